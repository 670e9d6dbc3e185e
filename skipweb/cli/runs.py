"""Commands on the database and the queue: submit, status, cancel, export, worker, db upgrade."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from skipweb.errors import UserError
from skipweb.facts import MAX_ID, Metric  # MAX_ID: ids are 32-bit in PostgreSQL, SQLite is held to it

stdout = Console()


def open_db(create: bool = False):
    """The settings' database, schema-checked. The embedded SQLite file is created on first use."""
    from db import migrate
    from db.errors import SchemaError
    from skipweb.settings import get_settings

    settings = get_settings()
    if create and settings.database_url is None and migrate.current(settings.db_url) is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(settings.db_url)
    try:
        migrate.check(settings.db_url)
    except SchemaError as e:
        raise UserError(str(e)) from None
    return settings


def db_upgrade() -> None:
    """Create or migrate the database schema to this version of skipweb."""
    from db import migrate
    from db.session import redacted
    from skipweb.settings import get_settings

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.db_url)
    stdout.print(f"database at {redacted(settings.db_url)} is at revision {migrate.current(settings.db_url)}")


def status(
    target: Annotated[str | None, typer.Argument(help="run id, or exp:ID for an experiment")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Status, attempts, reason and progress of a run, an experiment's runs, or all recent runs."""
    from db import runs

    exp = _int(target[4:], "experiment id") if target and target.startswith("exp:") else None
    run_id = _int(target, "run id") if target and not target.startswith("exp:") else None
    settings = open_db()
    if run_id is None:
        if exp is not None:
            from db import experiments

            if experiments.get_experiment(settings.db_url, exp) is None:  # as `export` says it
                raise UserError(f"no experiment {exp}; see `skipweb status` for experiment ids")
        records = runs.list_runs(settings.db_url, experiment_id=exp, limit=STATUS_ROWS)
        if as_json:
            print(json.dumps([status_json(r) for r in records]))
            return
        table = Table("id", "exp", "run", "status", "attempts", "progress", "test err", "reason")
        for r in records:
            d = status_json(r)
            err = r.latest.get(Metric.TEST_ERROR)
            table.add_row(str(r.id), str(r.experiment_id), r.label, r.status, str(r.attempts),
                          f"{d['progress']:.0%}", "" if err is None else f"{err:.4f}", r.reason or "")
        stdout.print(table)
        if len(records) == STATUS_ROWS:
            total = sum(runs.count_runs(settings.db_url, experiment_id=exp).values())
            stdout.print(f"the newest {STATUS_ROWS} of {total:,} runs" + ("" if exp else "; `skipweb status exp:ID` "
                         "lists one experiment's"))  # fmt: skip
        return
    record = runs.get_run(settings.db_url, run_id)
    if record is None:
        raise UserError(f"no run {target}; see `skipweb status` for run ids")
    if as_json:
        print(json.dumps(status_json(record)))
    else:
        d = status_json(record)
        stdout.print(f"run {record.id} ({record.label}): {record.status}, attempt {record.attempts}, "
                     f"{d['progress']:.0%} done" + (f" — {record.reason}" if record.reason else ""))


STATUS_ROWS = 50  # runs listed by `skipweb status` (newest first): a screenful, then how many there are


def status_json(r) -> dict:
    progress = (r.steps_done / r.total_steps) if r.total_steps else (1.0 if r.status == "succeeded" else 0.0)
    return {"id": r.id, "experiment_id": r.experiment_id, "label": r.label, "status": r.status,
            "attempts": r.attempts, "reason": r.reason, "progress": round(min(1.0, progress), 4),
            "steps_done": r.steps_done, "total_steps": r.total_steps, "epochs_done": r.epochs_done,
            "worker": r.lease_owner or r.worker_host, "device": r.device, "latest": r.latest}


def cancel(run_id: Annotated[int, typer.Argument(help="run id", min=1, max=MAX_ID)]) -> None:
    """Cancel a queued run at once, or a running one at its next step."""
    from db import runs
    from db.errors import RunNotFound, RunStateError

    settings = open_db()
    try:
        outcome = runs.request_cancel(settings.db_url, run_id)
    except (RunNotFound, RunStateError) as e:
        raise UserError(str(e)) from None
    stdout.print(f"run {run_id}: " + ("cancelled" if outcome == "cancelled" else "cancel requested; it stops at its next step"))


def export(
    experiment: Annotated[int, typer.Argument(help="experiment id", min=1, max=MAX_ID)],
    fmt: Annotated[str, typer.Option("--format", help="csv, parquet or json")] = "csv",
    output: Annotated[Path, typer.Option("-o", "--output", help="file to write")] = Path("metrics.csv"),
    force: Annotated[bool, typer.Option("--force", help="overwrite the output file if it exists")] = False,
    probes: Annotated[bool, typer.Option("--probes", help="add every per-layer probe statistic as rows keyed "
                                         "probe/<stat>/<layer> (gradient norm, weight norm, update ratio)")] = False,
) -> None:
    """Every metric of an experiment's runs, one row per (run, key, step), with each run's label, status, recipe
    columns and whole spec (JSON); --probes adds the per-layer probe statistics."""
    import pandas as pd

    from db import experiments, metrics, runs

    if fmt not in ("csv", "parquet", "json"):
        raise UserError(f"unknown format {fmt!r}; choose one of: csv, parquet, json")
    if str(output) in ("", ".") or output.is_dir():
        raise UserError(f"{str(output)!r} is not a file to write; give -o a file name, e.g. metrics.{fmt}")
    if any(ord(c) < 32 or ord(c) == 127 for c in str(output)):  # a newline, tab or escape in a file name
        raise UserError(f"-o {str(output)!r} contains a control character; give a plain file name, e.g. metrics.{fmt}")
    if output.exists() and not force:
        raise UserError(f"{output} exists; use --force to overwrite it, or choose another -o")
    settings = open_db()
    if experiments.get_experiment(settings.db_url, experiment) is None:
        raise UserError(f"no experiment {experiment}; see `skipweb status` for experiment ids")
    records = runs.list_runs(settings.db_url, experiment_id=experiment, limit=100_000)
    df = metrics.read_metrics(settings.db_url, [r.id for r in records])
    if probes:
        df = pd.concat([df, metrics.read_probes_long(settings.db_url, [r.id for r in records])], ignore_index=True)
    info = {r.id: {"label": r.label, "family": r.family, "depth": r.depth, "seed": r.seed, "status": r.status,
                   **{k: r.spec.get(k) for k in SPEC_COLUMNS}, "options": json.dumps(r.spec.get("options", {})),
                   "spec": r.spec_json} for r in records}  # fmt: skip
    for col in ("label", "family", "depth", "seed", "status", *SPEC_COLUMNS, "options", "spec"):
        df[col] = df["run_id"].map(lambda i, c=col: info[i][c])
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        {"csv": lambda: df.to_csv(output, index=False), "parquet": lambda: df.to_parquet(output, index=False),
         "json": lambda: df.to_json(output, orient="records")}[fmt]()
    except OSError as e:
        raise UserError(f"cannot write {output}: {e.strerror or e}") from None
    stdout.print(f"wrote {len(df)} rows from {len(records)} runs to {output}")


# the recipe and set-up of each run, as columns beside its metrics (the whole spec is in "spec", as JSON)
SPEC_COLUMNS = ("dataset", "subset", "epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
                "schedule", "warmup_epochs", "augment", "device")


def worker(
    gpus: Annotated[str | None, typer.Option(help="GPU indices, one worker each, e.g. 0,1")] = None,
    queues: Annotated[str | None, typer.Option(help="queues to consume (default: gpu with GPUs, else cpu,gpu)")] = None,
    loglevel: Annotated[str, typer.Option()] = "INFO",
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads of this worker (default: all the "
                                                "machine's cores, shared out among the GPU workers it starts)")] = None,
) -> None:
    """Start Celery workers: one per GPU, or one CPU worker (which then also takes GPU-queue runs)."""
    open_db(create=True)
    if gpus is None and os.environ.get("CUDA_VISIBLE_DEVICES") is None:
        import torch

        gpus = ",".join(str(i) for i in range(torch.cuda.device_count())) or None
    if gpus and "," in gpus:  # several GPUs: one child process each, pinned by CUDA_VISIBLE_DEVICES
        share = str(threads or share_of_cores(len(gpus.split(","))))
        procs = [subprocess.Popen([sys.executable, "-m", "skipweb", "worker", "--gpus", g, "--loglevel", loglevel,
                                   "--threads", share], env={**os.environ, "CUDA_VISIBLE_DEVICES": g})
                 for g in gpus.split(",")]  # fmt: skip
        try:
            sys.exit(max(p.wait() for p in procs))
        except KeyboardInterrupt:
            for p in procs:
                p.terminate()
            return
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus
    queue_list = queues or ("gpu" if gpus else "cpu,gpu")
    name = f"skipweb-{'gpu' + gpus if gpus else 'cpu'}-{os.getpid()}@%h"
    import torch

    # More threads than cores among the processes on a machine slows every run many times over (oversubscribed
    # OpenMP threads spin against each other), so a worker uses its share of the cores and no more.
    torch.set_num_threads(threads or share_of_cores(1))
    from skipweb.services.broker import app  # it loads the task bodies (workers.tasks) by name

    quiet_root_warning()
    app.worker_main(["worker", "--pool=solo", "--concurrency=1", f"--queues={queue_list}",
                     f"--loglevel={loglevel}", f"--hostname={name}", "--without-gossip", "--without-mingle"])


def quiet_root_warning() -> None:
    """Celery prints a 6-line "absolutely not recommended" block when a worker runs as root (as in many
    containers and on this project's CI machine). Say once, in one line, what the risk is and is not instead:
    this app accepts JSON messages only (Celery refuses root outright when pickle is accepted), so a message on
    the broker cannot run code; root still lets a compromised training job touch the whole machine."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    import warnings

    from celery.exceptions import SecurityWarning

    warnings.filterwarnings("ignore", category=SecurityWarning)
    print("worker running as root: it accepts JSON messages only, so the broker cannot make it "
          "run code, but prefer an unprivileged user (the Docker image runs as 'skipweb')", file=sys.stderr)


def share_of_cores(processes: int) -> int:
    """CPU threads for one of ``processes`` worker processes on this machine: an equal share, at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, processes))


def _int(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{text!r} is not a valid {what}") from None
    if not 1 <= value <= MAX_ID:
        raise UserError(f"{text} is not a valid {what}: ids run from 1 to {MAX_ID}")
    return value


def register(app: typer.Typer) -> None:
    app.command()(status)
    app.command()(cancel)
    app.command()(export)
    app.command()(worker)
    db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
    db_app.command("upgrade")(db_upgrade)
    app.add_typer(db_app, name="db")
