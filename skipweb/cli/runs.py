"""Commands on the database: status, cancel, export, db upgrade (and `open_db`, which every command uses)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from skipweb.errors import UserError
from skipweb.facts import MAX_ID, Metric  # MAX_ID: ids are 32-bit in PostgreSQL, SQLite is held to it

stdout = Console()


def open_db(create: bool = False):
    """The settings' database, schema-checked. ``create`` (the long-lived processes: ``worker``, ``up``): the
    embedded SQLite file is created on first use, and a database that is down or locked is waited for like
    every other access of a worker (db.retry, the settings' budget, one log line per retry), so a worker
    started during an outage waits instead of dying at start-up. A one-off command answers at once."""
    from db.errors import SchemaError
    from skipweb.services.schema import open_database
    from skipweb.settings import get_settings

    settings = get_settings()
    try:
        open_database(settings, create=create)
    except SchemaError as e:
        raise UserError(str(e)) from None
    return settings


def db_upgrade() -> None:
    """Create or migrate the database schema to this version of skipweb."""
    from db.session import redacted
    from skipweb.services.schema import upgrade
    from skipweb.settings import get_settings

    settings = get_settings()
    revision = upgrade(settings)
    stdout.print(f"database at {redacted(settings.db_url)} is at revision {revision}")


def status(
    target: Annotated[str | None, typer.Argument(help="run id, or exp:ID for an experiment")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Status, attempts, reason and progress of a run, an experiment's runs, or all recent runs."""
    from db import queries

    exp = _int(target[4:], "experiment id") if target and target.startswith("exp:") else None
    run_id = _int(target, "run id") if target and not target.startswith("exp:") else None
    settings = open_db()
    if run_id is None:
        if exp is not None and queries.get_experiment(settings.db_url, exp) is None:  # as `export` says it
            raise UserError(f"no experiment {exp}; see `skipweb status` for experiment ids")
        records = queries.list_runs(settings.db_url, experiment_id=exp, limit=STATUS_ROWS)
        now = connected_workers(settings, records)
        if as_json:
            print(json.dumps([status_json(r, now) for r in records]))
            return
        table = Table("id", "exp", "run", "status", "attempts", "progress", "test err", "reason")
        for r in records:
            d = status_json(r, now)
            err = r.latest.get(Metric.TEST_ERROR)
            table.add_row(str(r.id), str(r.experiment_id), r.label, r.status, str(r.attempts),
                          f"{d['progress']:.0%}", "" if err is None else f"{err:.4f}", d["reason"] or "")
        stdout.print(table)
        if len(records) == STATUS_ROWS:
            total = sum(queries.count_runs(settings.db_url, experiment_id=exp).values())
            stdout.print(f"the newest {STATUS_ROWS} of {total:,} runs" + ("" if exp else "; `skipweb status exp:ID` "
                         "lists one experiment's"))  # fmt: skip
        return
    record = queries.get_run(settings.db_url, run_id)
    if record is None:
        raise UserError(f"no run {target}; see `skipweb status` for run ids")
    d = status_json(record, connected_workers(settings, [record]))
    if as_json:
        print(json.dumps(d))
    else:
        stdout.print(f"run {record.id} ({record.label}): {record.status}, attempt {record.attempts}, "
                     f"{d['progress']:.0%} done" + (f" — {d['reason']}" if d["reason"] else ""), soft_wrap=True)


STATUS_ROWS = 50  # runs listed by `skipweb status` (newest first): a screenful, then how many there are


def connected_workers(settings, records) -> list:
    """The connected workers, read only when a run is queued (the only rows whose reason needs them)."""
    if not any(r.status == "queued" for r in records):
        return []
    from skipweb.services import presence

    return presence.connected(settings.db_url, settings)


def status_json(r, connected_now=()) -> dict:
    """A run's status; a queued run that no connected worker takes says what it waits for in ``reason``."""
    progress = (r.steps_done / r.total_steps) if r.total_steps else (1.0 if r.status == "succeeded" else 0.0)
    reason = r.reason
    if r.status == "queued" and not reason:
        from skipweb.services.presence import waiting_reason

        try:
            reason = waiting_reason(r.spec.get("device"), connected_now)
        except ValueError:  # a malformed stored spec
            reason = None
    return {"id": r.id, "experiment_id": r.experiment_id, "label": r.label, "status": r.status,
            "attempts": r.attempts, "reason": reason, "progress": round(min(1.0, progress), 4),
            "steps_done": r.steps_done, "total_steps": r.total_steps, "epochs_done": r.epochs_done,
            "worker": r.lease_owner or r.worker_host, "device": r.device, "latest": r.latest}


def cancel(run_id: Annotated[int, typer.Argument(help="run id", min=1, max=MAX_ID)]) -> None:
    """Cancel a queued run at once, or a running one at its next step."""
    from db.errors import RunNotFound, RunStateError
    from skipweb.services.runs import cancel as request_cancel

    settings = open_db()
    try:
        outcome = request_cancel(run_id, db=settings.db_url)
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

    from db import metrics, queries

    if fmt not in ("csv", "parquet", "json"):
        raise UserError(f"unknown format {fmt!r}; choose one of: csv, parquet, json")
    if str(output) in ("", ".") or output.is_dir():
        raise UserError(f"{str(output)!r} is not a file to write; give -o a file name, e.g. metrics.{fmt}")
    if any(ord(c) < 32 or ord(c) == 127 for c in str(output)):  # a newline, tab or escape in a file name
        raise UserError(f"-o {str(output)!r} contains a control character; give a plain file name, e.g. metrics.{fmt}")
    if output.exists() and not force:
        raise UserError(f"{output} exists; use --force to overwrite it, or choose another -o")
    settings = open_db()
    if queries.get_experiment(settings.db_url, experiment) is None:
        raise UserError(f"no experiment {experiment}; see `skipweb status` for experiment ids")
    records = queries.list_runs(settings.db_url, experiment_id=experiment, limit=100_000)
    df = metrics.read_metrics(settings.db_url, [r.id for r in records])
    if probes:
        df = pd.concat([df, metrics.read_probes_long(settings.db_url, [r.id for r in records])], ignore_index=True)
    info = {r.id: {"label": r.label, "family": r.family, "depth": r.depth, "seed": r.seed, "status": r.status,
                   **{k: r.spec.get(k) for k in SPEC_COLUMNS}, "options": json.dumps(r.spec.get("options", {})),
                   "spec": r.spec_json} for r in records}  # fmt: skip
    for col in ("label", "family", "depth", "seed", "status", *SPEC_COLUMNS, "options", "spec"):
        df[col] = df["run_id"].map(lambda i, c=col: info[i][c])

    def as_json() -> None:  # options and spec as JSON objects, not strings holding JSON
        rows = json.loads(df.to_json(orient="records"))
        for row in rows:
            row["options"], row["spec"] = json.loads(row["options"]), json.loads(row["spec"])
        output.write_text(json.dumps(rows), encoding="utf-8")

    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        {"csv": lambda: df.to_csv(output, index=False), "parquet": lambda: df.to_parquet(output, index=False),
         "json": as_json}[fmt]()
    except OSError as e:
        raise UserError(f"cannot write {output}: {e.strerror or e}") from None
    stdout.print(f"wrote {len(df)} rows from {len(records)} runs to {output}")


# the recipe and set-up of each run, as columns beside its metrics (the whole spec is in "spec", as JSON)
SPEC_COLUMNS = ("dataset", "subset", "epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
                "schedule", "warmup_epochs", "augment", "device")


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
    db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
    db_app.command("upgrade")(db_upgrade)
    app.add_typer(db_app, name="db")
