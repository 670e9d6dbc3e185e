"""``skipweb landscape RUN``: the filter-normalized loss surface around a run's final weights and the line
from its initial weights, computed here (with a progress bar) or by a worker (``--queue``), then stored."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from skipweb import facts
from skipweb.cli.runs import open_db

stdout = Console()
stderr = Console(stderr=True)


def landscape(
    run_id: Annotated[int, typer.Argument(help="run id (a finished run with a checkpoint)", min=1, max=2**31 - 1)],
    grid: Annotated[
        int, typer.Option(min=facts.LANDSCAPE_GRID_MIN, max=facts.LANDSCAPE_GRID_MAX,
                          help="N: an N×N grid, 3 to 201 (odd puts the final weights at the centre)")
    ] = facts.LANDSCAPE_GRID,
    range_: Annotated[
        float, typer.Option("--range", min=1e-6, max=facts.LANDSCAPE_RANGE_MAX,
                            help="R: the grid spans [-R, R]² in filter-normalized units (at most 1000)")
    ] = facts.LANDSCAPE_RANGE,
    subset: Annotated[
        str, typer.Option(metavar="N|all", help="training samples the loss is averaged over: a number, or all")
    ] = str(facts.LANDSCAPE_SUBSET),
    seed: Annotated[
        int, typer.Option(min=0, max=facts.MAX_ID, help="seed of the random directions and the subset")
    ] = facts.LANDSCAPE_SEED,
    queue: Annotated[
        bool, typer.Option("--queue", help="queue a job for the workers instead of computing here")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Loss landscape around a run's final weights (Li et al. 2018): 2-D filter-normalized slice + init→final line."""
    from skipweb.services.landscapes import checked_run, compute_and_store  # torch: only when asked

    count = samples(subset)  # 0: all
    settings = open_db()
    sub = count or None
    if queue:  # a job row, then its id to the workers (the same path as the Run detail page's button)
        from skipweb.services.landscapes import request_landscape

        checked_run(settings.db_url, run_id)
        req = request_landscape(
            run_id, grid=grid, range_=range_, subset=count, seed=seed, db=settings.db_url
        )
        if as_json:
            print(json.dumps(req.as_json()))
        else:
            stdout.print(f"run {run_id}: landscape job {req.job_id} ({grid}×{grid} over ±{range_}) queued")
        if req.warning:
            stderr.print(f"warning: {req.warning}")
        return

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from skipweb.training.landscape import evaluations

    bar = Progress(
        TextColumn("[bold]landscape run {task.fields[run]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr if as_json else stdout,
    )
    checked = checked_run(settings.db_url, run_id)  # refuse before drawing a progress bar
    with bar:
        task = bar.add_task("landscape", total=evaluations(grid), run=run_id)
        result = compute_and_store(
            settings,
            run_id,
            grid=grid,
            range_=range_,
            subset=sub,
            seed=seed,
            progress=lambda n: bar.advance(task, n),
            checked=checked,
        )
    if as_json:
        print(json.dumps({"run_id": run_id, **result.as_json()}))
        return
    flat = [v for r in result.loss for v in r if v == v]
    stdout.print(
        f"run {run_id}: {grid}×{grid} landscape over ±{range_}: loss at the final weights "
        f"{result.final_loss:.4g}, min {min(flat):.4g}, max {max(flat):.4g}; stored"
    )


def samples(text: str) -> int:
    """``--subset``: a positive number of samples, or ``all`` (returned as 0, the job rows' "every sample")."""
    from skipweb.errors import UserError

    if text.strip().lower() == "all":
        return 0
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= facts.MAX_ID:
        raise UserError(f"--subset {text!r} is not a number of samples: give one from 1 up, or all")
    return n


def register(app: typer.Typer) -> None:
    app.command()(landscape)
