"""Run lifecycle: queued → running → succeeded | failed | diverged | cancelled.

Every function is one transaction and every state change is a conditional UPDATE whose row count says
whether it applied; the worker's lease (claim, heartbeat, finish, requeue) is db.lease's, shared with
loss-landscape jobs.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from db.errors import RunNotFound, RunStateError
from db.lease import Lease
from db.records import FINAL_STATUSES

# Reads live in db.run_queries; re-exported so callers find the whole run API here.
from db.run_queries import (  # noqa: F401
    count_runs,
    duplicate_runs,
    get_run,
    list_runs,
    queued_ids,
    stop_requested,
    succeeded_hashes,
)
from db.session import DbLike, db_now, scope
from db.tables import SqlProbeLayer, SqlRun
from skipweb.facts import RETRYABLE_STATUSES

_RUN_FIELDS = ("config_hash", "label", "family", "depth", "dataset", "seed")
RETRYABLE = RETRYABLE_STATUSES


def add_runs(
    db: DbLike,
    experiment_id: int,
    specs: Sequence[Mapping[str, Any]],
    checkpoint_dir: Path | None = None,
) -> list[int]:
    """Queue one run per entry; return their ids in order.

    Each entry: ``{"spec": dict | JSON text, "config_hash", "label", "family", "depth", "dataset",
    "seed"}``. ``checkpoint_path`` is generated here from ``checkpoint_dir`` (default: the settings')
    and the new id, never taken from the caller's data. The row stores no queue: the routing rule decides
    it from the spec's device at every publish (skipweb.services.broker.route).
    """
    ckpt = _checkpoint_dir(checkpoint_dir)
    with scope(db) as s:
        rows = [SqlRun(experiment_id=experiment_id, status="queued", **_run_fields(e)) for e in specs]
        s.add_all(rows)
        s.flush()  # assigns ids
        for row in rows:
            # the id plus a random suffix: a new database over an old data dir (ids restart at 1) must not
            # resume another run's checkpoint that happens to share its id and configuration
            row.checkpoint_path = str(ckpt / f"run-{row.id}-{secrets.token_hex(4)}")
        return [row.id for row in rows]


SUBMIT_LOCK = 0x736B6970  # "skip": PostgreSQL's advisory lock key of the submit transaction


def lock_submissions(s: Session) -> None:
    """Make this transaction the only one checking for and adding new submissions until it ends, so two
    submits of one grid at once cannot both find it absent (duplicate_runs) and both queue it. PostgreSQL:
    a transaction-scoped advisory lock (READ COMMITTED: the check after it sees every earlier commit).
    SQLite: nothing to do, a write transaction already holds the database's write lock from BEGIN
    IMMEDIATE (db.session). Call it first in a write transaction."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SUBMIT_LOCK})


LEASE = Lease(SqlRun, FINAL_STATUSES)


def claim(
    db: DbLike, run_id: int, worker_id: str, host: str | None = None, device: str | None = None
) -> bool:
    """Take a queued run: running, attempts + 1, lease to ``worker_id``. False if not queued any more."""
    return LEASE.claim(db, run_id, worker_id, worker_host=host, device=device)


def hand_back(db: DbLike, run_id: int, worker_id: str, reason: str) -> bool:
    """The worker could not reach the database for long: the run goes back to queued (db.lease.release)."""
    return LEASE.release(db, run_id, worker_id, reason)


def holds_lease(db: DbLike, run_id: int, worker_id: str) -> bool:
    """True while ``worker_id`` holds the run's lease (the fence before a worker writes a file)."""
    return LEASE.held(db, run_id, worker_id)


def heartbeat(
    db: DbLike, run_id: int, worker_id: str, progress: Mapping[str, int] | None = None
) -> Literal["ok", "cancel"]:
    """Renew the lease (and record ``steps_done``/``epochs_done`` from ``progress``).

    Returns "cancel" when a cancel was requested or the run is no longer running under this worker
    (requeued after a missed lease, deleted, finished): the worker should stop. A cancel request still
    renews the lease so the run is not requeued while the worker winds down.
    """
    values = {k: int(v) for k, v in (progress or {}).items() if k in ("steps_done", "epochs_done")}
    if not LEASE.renew(db, run_id, worker_id, **values):
        return "cancel"
    return "cancel" if stop_requested(db, run_id) else "ok"


def set_progress(
    db: DbLike, run_id: int, steps_done: int, epochs_done: int, owner: str | None = None
) -> bool:
    """Record progress; with ``owner`` only while that worker holds the lease."""
    with scope(db) as s:
        stmt = LEASE.owned(run_id, owner) if owner else update(SqlRun).where(SqlRun.id == run_id)
        return s.execute(stmt.values(steps_done=steps_done, epochs_done=epochs_done)).rowcount == 1


def finish(db: DbLike, run_id: int, worker_id: str, status: str, reason: str | None = None) -> bool:
    """End a run held by ``worker_id`` with a final status; clears the lease. False if not its lease."""
    if status == "cancelled" and reason is None:
        reason = "cancelled on request"
    return LEASE.finish(db, run_id, worker_id, status, reason)


def set_info(
    db: DbLike,
    run_id: int,
    *,
    params: int | None,
    flops: int | None,
    device: str | None,
    torch_version: str | None,
    total_steps: int | None,
    probe_layers: Iterable[Mapping[str, Any] | Any],
    owner: str | None = None,
    blocks: Iterable[Any] = (),
) -> bool:
    """What the worker learnt when it built the model. Probe layers are replaced, so a resumed attempt
    may call this again. ``probe_layers``: dicts with idx (or index), name, skip, params, or objects with
    those attributes (skipweb.models.ProbeLayer). With ``owner``, only while that worker holds the lease."""
    layers = [_layer(run_id, p) for p in probe_layers]
    with scope(db) as s:
        stmt = LEASE.owned(run_id, owner) if owner else update(SqlRun).where(SqlRun.id == run_id)
        info = {"params": params, "flops": flops, "device": device, "torch_version": torch_version}
        if s.execute(stmt.values(total_steps=total_steps, **info)).rowcount != 1:
            return False
        s.execute(delete(SqlProbeLayer).where(SqlProbeLayer.run_id == run_id))
        s.add_all(layers)
        from db.blocks import replace_layers  # db.blocks loads numpy: not at import, for the CLI's sake

        replace_layers(s, run_id, blocks)
        return True


def request_cancel(db: DbLike, run_id: int) -> Literal["cancelled", "requested"]:
    """Cancel a run: a queued one at once ("cancelled"); a running one by flagging it for its worker,
    which stops at its next flush or heartbeat ("requested"). A finished run raises RunStateError."""
    with scope(db) as s:
        now = db_now(s)
        queued = update(SqlRun).where(SqlRun.id == run_id, SqlRun.status == "queued")
        if s.execute(
            queued.values(status="cancelled", reason="cancelled before it started", finished_at=now)
        ).rowcount:
            return "cancelled"
        running = update(SqlRun).where(SqlRun.id == run_id, SqlRun.status == "running")
        if s.execute(running.values(cancel_requested=True)).rowcount:
            return "requested"
        status = s.scalar(select(SqlRun.status).where(SqlRun.id == run_id))
        if status is None:
            raise RunNotFound(f"run {run_id} does not exist")
        raise RunStateError(f"run {run_id} already {status}; there is nothing to cancel")


def requeue_expired(
    db: DbLike, lease_seconds: float, max_attempts: int, seen: dict[int, Any] | None = None
) -> tuple[list[int], list[int]]:
    """Sweep running runs whose worker stopped heartbeating for ``lease_seconds`` (db.lease): requeued to
    resume from their checkpoint, failed at ``max_attempts``, or cancelled when a cancel was requested.
    Returns (requeued ids, ids that reached a final state). ``seen``: see db.lease (a sweeper's memory)."""

    def cancelled(row: SqlRun, who: str) -> dict[str, Any] | None:
        if not row.cancel_requested:
            return None
        return {"status": "cancelled", "reason": f"cancelled; worker {who} stopped heartbeating before it stopped"}

    return LEASE.requeue_expired(db, lease_seconds, max_attempts, ending=cancelled, seen=seen)


def retry(db: DbLike, run_id: int, checkpoint_dir: Path | None = None) -> int:
    """Queue a NEW run with the same spec in the same experiment (``retry_of`` points back), so the
    failed attempt's metrics and reason stay for comparison. Only failed, cancelled or diverged runs."""
    with scope(db) as s:
        old = s.get(SqlRun, run_id)
        if old is None:
            raise RunNotFound(f"run {run_id} does not exist")
        if old.status not in RETRYABLE:
            raise RunStateError(
                f"run {run_id} is {old.status}; only {', '.join(RETRYABLE)} runs can be retried"
            )
        fields = {f: getattr(old, f) for f in _RUN_FIELDS}
        new_id = add_runs(s, old.experiment_id, [{"spec": old.spec, **fields}], checkpoint_dir)[0]
        s.execute(update(SqlRun).where(SqlRun.id == new_id).values(retry_of=run_id))
        return new_id


def mark_bad_spec(db: DbLike, run_id: int, reason: str) -> bool:
    """Fail a queued or running run whose stored spec no longer validates (reason: the one-line error)."""
    with scope(db) as s:
        res = s.execute(
            update(SqlRun)
            .where(SqlRun.id == run_id, SqlRun.status.in_(("queued", "running")))
            .values(
                status="failed", reason=f"invalid spec: {reason}", finished_at=db_now(s), lease_owner=None
            )
        )
        return res.rowcount == 1


def delete_run(db: DbLike, run_id: int, force: bool = False) -> str | None:
    """Delete a run with its metrics and probes (ON DELETE CASCADE); refuses a running run unless
    ``force``. Returns its checkpoint path for the caller to remove (no file-system access here)."""
    with scope(db) as s:
        row = s.execute(select(SqlRun.status, SqlRun.checkpoint_path).where(SqlRun.id == run_id)).first()
        if row is None:
            raise RunNotFound(f"run {run_id} does not exist")
        if row.status == "running" and not force:
            raise RunStateError(f"run {run_id} is running: cancel it first")
        s.execute(delete(SqlRun).where(SqlRun.id == run_id))
        return row.checkpoint_path


# ---- helpers ------------------------------------------------------------------------------------------
def _checkpoint_dir(checkpoint_dir: Path | None) -> Path:
    if checkpoint_dir is None:
        from skipweb.settings import get_settings

        checkpoint_dir = get_settings().checkpoint_dir
    return Path(checkpoint_dir).resolve()


def _run_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    missing = [k for k in ("spec", *_RUN_FIELDS) if k not in entry]
    if missing:
        raise ValueError(f"run entry lacks {', '.join(missing)}")
    spec = entry["spec"]
    spec = json.loads(spec) if isinstance(spec, str) else spec  # text must at least be JSON
    return {
        "spec": json.dumps(spec, sort_keys=True, separators=(",", ":")),
        **{k: entry[k] for k in _RUN_FIELDS},
    }


def _layer(run_id: int, p: Mapping[str, Any] | Any) -> SqlProbeLayer:
    get = p.get if isinstance(p, Mapping) else lambda k, d=None: getattr(p, k, d)
    idx = get("idx", None)
    idx = get("index") if idx is None else idx
    return SqlProbeLayer(
        run_id=run_id, idx=int(idx), name=str(get("name")), skip=bool(get("skip")), params=int(get("params"))
    )
