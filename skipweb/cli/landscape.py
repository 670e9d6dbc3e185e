"""``skipweb landscape RUN``: the filter-normalized loss surface around a run's final weights and the line
from its initial weights, computed here (with a progress bar) or by a worker (``--queue``), then stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from skipweb.cli.runs import UserError, open_db
from skipweb.landscape import DEFAULT_GRID, DEFAULT_RANGE, DEFAULT_SEED, DEFAULT_SUBSET

stdout = Console()
stderr = Console(stderr=True)


def checked_run(db_url: str, run_id: int):
    """The run's record and its checkpoint payload, or UserError naming why a landscape is impossible."""
    from db.records import FINAL_STATUSES
    from db.runs import get_run
    from skipweb import checkpoint

    record = get_run(db_url, run_id)
    if record is None:
        raise UserError(f"no run {run_id}; see `skipweb status` for run ids")
    if record.status not in FINAL_STATUSES:
        raise UserError(f"run {run_id} is {record.status}, not finished; a landscape needs its final weights")
    state = checkpoint.load(Path(record.checkpoint_path)) if record.checkpoint_path else None
    if state is None:
        raise UserError(
            f"run {run_id} has no checkpoint (looked in {record.checkpoint_path}); nothing to slice"
        )
    return record, state


def compute_and_store(
    settings,
    run_id: int,
    *,
    grid: int,
    range_: float,
    subset: int | None,
    seed: int,
    device: str = "cpu",
    progress=None,
    checked=None,
):
    """Compute the 2-D surface and the interpolation for ``run_id``; store '2d', '1d' (the centre row) and
    'interp' rows. Returns the :class:`skipweb.landscape.Landscape`. ``checked``: :func:`checked_run`'s
    result when the caller has it already."""
    from db.landscapes import save_landscape
    from db.session import session_scope
    from skipweb.landscape import _finite, compute
    from skipweb.spec import RunSpec

    record, state = checked or checked_run(settings.db_url, run_id)
    spec = RunSpec.parse(record.spec_json)
    result = compute(
        spec,
        state["model"],
        data_dir=settings.datasets_dir,
        grid=grid,
        range_=range_,
        subset=subset,
        seed=seed,
        device=device,
        progress=progress,
    )
    common = {"grid": grid, "range_": range_, "seed": seed, "subset": subset}
    rows = [[_finite(v) for v in r] for r in result.loss]
    with session_scope(settings.db_url) as s:
        save_landscape(s, run_id, "2d", x=result.x, y=result.y, loss=rows, **common)
        save_landscape(s, run_id, "1d", x=result.x, y=None, loss=rows[len(rows) // 2], **common)
        save_landscape(
            s,
            run_id,
            "interp",
            x=[a for a, _ in result.interp],
            y=None,
            loss=[_finite(v) for _, v in result.interp],
            **common,
        )
    return result


def landscape(
    run_id: Annotated[int, typer.Argument(help="run id (a finished run with a checkpoint)", min=1, max=2**31 - 1)],
    grid: Annotated[
        int, typer.Option(min=1, max=201, help="N: an N×N grid (odd puts the final weights at the centre)")
    ] = DEFAULT_GRID,
    range_: Annotated[
        float, typer.Option("--range", min=1e-6, max=1000.0,
                            help="R: the grid spans [-R, R]² in filter-normalized units (at most 1000)")
    ] = DEFAULT_RANGE,
    subset: Annotated[
        int, typer.Option(min=0, help="training samples the loss is averaged over (0: all)")
    ] = DEFAULT_SUBSET,
    seed: Annotated[
        int, typer.Option(min=0, help="seed of the random directions and the subset")
    ] = DEFAULT_SEED,
    queue: Annotated[
        bool, typer.Option("--queue", help="queue a job for the workers instead of computing here")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Loss landscape around a run's final weights (Li et al. 2018): 2-D filter-normalized slice + init→final line."""
    settings = open_db()
    sub = subset or None
    if queue:  # a job row, then its id to the workers (the same path as the Run detail page's button)
        from skipweb.launch import request_landscape

        checked_run(settings.db_url, run_id)
        req = request_landscape(
            run_id, grid=grid, range_=range_, subset=subset, seed=seed, db=settings.db_url
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

    from skipweb.landscape import evaluations

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


def register(app: typer.Typer) -> None:
    app.command()(landscape)
