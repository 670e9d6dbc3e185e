"""Loss-landscape jobs (table ``landscape_jobs``): the row a request writes before a worker computes it.

``pending`` (asked for at launch) waits for its run: the run's worker queues it when the run succeeds,
or fails it with a reason when the run did not. ``queued`` → ``running`` → ``succeeded`` | ``failed``.
As for runs, every state change is a conditional UPDATE whose row count says whether it applied, so a
duplicate or redelivered message finds the job taken and does nothing, on SQLite and PostgreSQL alike.
A running job is leased to its worker, which renews ``heartbeat_at``; the sweep puts a job whose worker
stopped heartbeating back in the queue (:func:`requeue_expired_jobs`), or fails it past ``max_attempts``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select, update

from db.lease import Lease
from db.records import FINAL_STATUSES
from db.session import DbLike, db_now, scope
from db.tables import SqlLandscapeJob, SqlRun
from skipweb import facts

ACTIVE = ("pending", "queued", "running")
MAX_REASON = 500


@dataclass(frozen=True)
class LandscapeJobRecord:
    id: int
    run_id: int
    status: str
    grid: int
    range: float
    seed: int
    subset: int | None  # training samples the loss averages over; None: all
    reason: str | None
    created_at: datetime
    finished_at: datetime | None
    attempts: int = 0  # claims so far (a worker lost mid-job makes it more than one)
    lease_owner: str | None = None  # the worker computing it, while running
    heartbeat_at: datetime | None = None
    started_at: datetime | None = None  # the first claim


def _record(row: SqlLandscapeJob) -> LandscapeJobRecord:
    return LandscapeJobRecord(
        row.id,
        row.run_id,
        row.status,
        row.grid,
        row.range,
        row.seed,
        row.subset,
        row.reason,
        row.created_at,
        row.finished_at,
        row.attempts,
        row.lease_owner,
        row.heartbeat_at,
        row.started_at,
    )


def one_line(text: str) -> str:
    """A reason as the UI shows it: the first non-empty line, capped."""
    line = next((t.strip() for t in str(text).splitlines() if t.strip()), "")
    return line[:MAX_REASON]


def create_jobs(
    db: DbLike,
    run_ids: Iterable[int],
    *,
    status: Literal["queued", "pending"] = "queued",
    grid: int | None = None,
    range_: float | None = None,
    subset: int | None = None,
    seed: int | None = None,
) -> list[int]:
    """One job per run, in order; return their ids. ``pending``: computed after the run succeeds.

    ``None`` takes the default of skipweb.facts; ``subset=0`` averages over every training sample, as the
    CLI's ``--subset 0``.
    """
    if status not in ("queued", "pending"):
        raise ValueError(f"a new landscape job is queued or pending, not {status!r}")
    grid = facts.LANDSCAPE_GRID if grid is None else int(grid)
    range_ = facts.LANDSCAPE_RANGE if range_ is None else float(range_)
    subset = facts.LANDSCAPE_SUBSET if subset is None else (int(subset) or None)
    seed = facts.LANDSCAPE_SEED if seed is None else int(seed)
    lo, hi = facts.LANDSCAPE_GRID_MIN, facts.LANDSCAPE_GRID_MAX
    if not lo <= grid <= hi or not 0 < range_ <= facts.LANDSCAPE_RANGE_MAX or seed < 0 or (subset or 0) < 0:  # not 0 < nan: refused too
        raise ValueError(
            f"bad landscape job: grid {grid} ({lo} to {hi}), range {range_} (> 0, ≤ 1000), seed {seed}, subset {subset} (≥ 0)"
        )
    with scope(db) as s:
        rows = [
            SqlLandscapeJob(run_id=int(r), status=status, grid=grid, range=range_, seed=seed, subset=subset)
            for r in run_ids
        ]
        s.add_all(rows)
        s.flush()
        return [row.id for row in rows]


def create_job(db: DbLike, run_id: int, **kw) -> int:
    """:func:`create_jobs` for one run."""
    return create_jobs(db, [run_id], **kw)[0]


def get_job(db: DbLike, job_id: int) -> LandscapeJobRecord | None:
    with scope(db, read_only=True) as s:
        row = s.get(SqlLandscapeJob, job_id)
        return None if row is None else _record(row)


LEASE = Lease(SqlLandscapeJob, ("succeeded", "failed"))


def claim(db: DbLike, job_id: int, owner: str) -> LandscapeJobRecord | None:
    """Take a queued job (db.lease: → running, attempts + 1, leased to ``owner``) and return it; None when
    it is not queued (taken, done, unknown)."""
    return get_job(db, job_id) if LEASE.claim(db, job_id, owner) else None


def holds_lease(db: DbLike, job_id: int, owner: str) -> bool:
    """True while ``owner`` holds the job's lease (the fence before its landscape is stored)."""
    return LEASE.held(db, job_id, owner)


def heartbeat(db: DbLike, job_id: int, owner: str) -> bool:
    """Renew ``owner``'s lease on a running job. False when it no longer holds it (the sweep requeued the
    job after a missed lease, or it ended or was deleted): the worker should give up the computation."""
    return LEASE.renew(db, job_id, owner)


def finish(
    db: DbLike,
    job_id: int,
    status: Literal["succeeded", "failed"],
    reason: str | None = None,
    *,
    owner: str,
) -> bool:
    """End a running job held by ``owner`` and clear its lease; a failure keeps a one-line reason. False if
    it was not running under ``owner``."""
    if status == "failed":
        reason = one_line(reason or "") or "failed (no reason given)"
    return LEASE.finish(db, job_id, owner, status, reason)


def requeue_expired_jobs(
    db: DbLike, lease_seconds: float, max_attempts: int, seen: dict[int, Any] | None = None
) -> tuple[list[int], list[int]]:
    """For the sweep: running jobs whose worker stopped heartbeating for ``lease_seconds`` (killed
    mid-landscape) go back to queued, to be published again, or fail past ``max_attempts`` (db.lease).
    Returns (requeued ids, failed ids). ``seen``: see db.lease (a sweeper's memory)."""
    return LEASE.requeue_expired(db, lease_seconds, max_attempts, seen=seen)


def list_jobs(db: DbLike, run_id: int) -> list[LandscapeJobRecord]:
    """The run's jobs, newest first."""
    with scope(db, read_only=True) as s:
        rows = s.scalars(
            select(SqlLandscapeJob)
            .where(SqlLandscapeJob.run_id == run_id)
            .order_by(SqlLandscapeJob.id.desc())
        )
        return [_record(r) for r in rows]


def latest_jobs(db: DbLike, run_ids: Sequence[int]) -> dict[int, LandscapeJobRecord]:
    """run id → its newest job, for the runs that have one."""
    if not run_ids:
        return {}
    newest = (
        select(func.max(SqlLandscapeJob.id))
        .where(SqlLandscapeJob.run_id.in_(list(run_ids)))
        .group_by(SqlLandscapeJob.run_id)
    )
    with scope(db, read_only=True) as s:
        return {
            r.run_id: _record(r)
            for r in s.scalars(select(SqlLandscapeJob).where(SqlLandscapeJob.id.in_(newest)))
        }


def release_pending(db: DbLike, run_id: int) -> list[int]:
    """The run succeeded: its pending jobs become queued. Returns their ids (to publish)."""
    with scope(db) as s:
        return _ids(
            s.execute(
                update(SqlLandscapeJob)
                .where(SqlLandscapeJob.run_id == run_id, SqlLandscapeJob.status == "pending")
                .values(status="queued")
                .returning(SqlLandscapeJob.id)
            )
        )


def fail_pending(db: DbLike, run_id: int, reason: str) -> list[int]:
    """The run ended without succeeding: its pending jobs fail with ``reason``. Returns their ids."""
    with scope(db) as s:
        return _ids(
            s.execute(
                update(SqlLandscapeJob)
                .where(SqlLandscapeJob.run_id == run_id, SqlLandscapeJob.status == "pending")
                .values(status="failed", reason=one_line(reason), finished_at=db_now(s))
                .returning(SqlLandscapeJob.id)
            )
        )


def settle_pending(db: DbLike) -> tuple[list[int], list[int]]:
    """For the sweep: pending jobs whose run already ended (its worker died before it could, or the run
    was cancelled while queued). Returns (ids now queued, ids now failed)."""
    with scope(db, read_only=True) as s:
        ended = s.execute(
            select(SqlRun.id, SqlRun.status)
            .join(SqlLandscapeJob, SqlLandscapeJob.run_id == SqlRun.id)
            .where(SqlLandscapeJob.status == "pending", SqlRun.status.in_(FINAL_STATUSES))
            .distinct()
        ).all()
    queued: list[int] = []
    failed: list[int] = []
    for run_id, status in ended:
        if status == "succeeded":
            queued += release_pending(db, run_id)
        else:
            failed += fail_pending(db, run_id, run_ended_reason(run_id, status))
    return queued, failed


def run_ended_reason(run_id: int, status: str) -> str:
    return f"run {run_id} ended {status}; no final weights"


def queued_jobs(db: DbLike, older_than: float = 0.0) -> list[tuple[int, int]]:
    """(job id, run id) of queued jobs created more than ``older_than`` seconds ago, oldest first: what
    to publish again when the broker lost its messages."""
    with scope(db, read_only=True) as s:
        cutoff = db_now(s) - timedelta(seconds=older_than)
        q = (
            select(SqlLandscapeJob.id, SqlLandscapeJob.run_id)
            .where(SqlLandscapeJob.status == "queued", SqlLandscapeJob.created_at <= cutoff)
            .order_by(SqlLandscapeJob.id)
        )
        return [(r.id, r.run_id) for r in s.execute(q)]


def _ids(result) -> list[int]:
    return sorted(int(i) for i in result.scalars())
