"""Read-only run queries for the dashboard, the CLI and the workers (re-exported by db.runs)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.experiments import experiment_ids_with_tag
from db.records import RunRecord
from db.session import DbLike, scope
from db.tables import SqlLatestMetric, SqlRun


def get_run(db: DbLike, run_id: int) -> RunRecord | None:
    """The run with its latest metrics, or None if there is no such run."""
    with scope(db, read_only=True) as s:
        row = s.get(SqlRun, run_id)
        return None if row is None else row.to_record(load_latest(s, [run_id]).get(run_id))


def _filtered(s: Session, q, experiment_id=None, status=None, family=None, tag=None, run_ids=None):
    """``q`` restricted to the runs matching every given filter (the same filters for listing and counting)."""
    if experiment_id is not None:
        q = q.where(SqlRun.experiment_id == experiment_id)
    if status is not None:
        q = q.where(SqlRun.status.in_([status] if isinstance(status, str) else list(status)))
    if family is not None:
        q = q.where(SqlRun.family == family)
    if run_ids is not None:
        q = q.where(SqlRun.id.in_(list(run_ids)))
    if tag is not None:
        q = q.where(SqlRun.experiment_id.in_(experiment_ids_with_tag(s, tag)))
    return q


def list_runs(
    db: DbLike,
    experiment_id: int | None = None,
    status: str | Iterable[str] | None = None,
    family: str | None = None,
    tag: str | None = None,
    run_ids: Iterable[int] | None = None,
    limit: int | None = 500,
    offset: int = 0,
) -> list[RunRecord]:
    """Runs newest first, filtered and paged in SQL (``limit``/``offset``); each carries ``latest`` (key →
    value at its newest step), read from the small latest_metrics table rather than the metric history."""
    with scope(db, read_only=True) as s:
        q = _filtered(s, select(SqlRun).order_by(SqlRun.id.desc()), experiment_id, status, family, tag, run_ids)
        rows = list(s.scalars(q.limit(limit).offset(offset or None)))
        latest = load_latest(s, [r.id for r in rows])
        return [r.to_record(latest.get(r.id)) for r in rows]


def count_runs(db: DbLike, **filters: Any) -> dict[str, int]:
    """Status → number of runs matching :func:`list_runs`' filters (experiment_id, status, family, tag,
    run_ids), in one GROUP BY: the list itself may be paged."""
    with scope(db, read_only=True) as s:
        q = _filtered(s, select(SqlRun.status, func.count()).group_by(SqlRun.status), **filters)
        return {st: n for st, n in s.execute(q)}


def queued_ids(db: DbLike) -> list[int]:
    """Ids of queued runs, oldest first: what to enqueue again after the broker lost its messages."""
    with scope(db, read_only=True) as s:
        return list(s.scalars(select(SqlRun.id).where(SqlRun.status == "queued").order_by(SqlRun.id)))


def succeeded_hashes(db: DbLike, hashes: Iterable[str]) -> dict[str, int]:
    """config_hash → id of the first run that succeeded with it, for the given hashes (to skip repeats)."""
    wanted = sorted(set(hashes))
    if not wanted:
        return {}
    with scope(db, read_only=True) as s:
        q = (
            select(SqlRun.config_hash, func.min(SqlRun.id))
            .where(SqlRun.status == "succeeded", SqlRun.config_hash.in_(wanted))
            .group_by(SqlRun.config_hash)
        )
        return {h: run_id for h, run_id in s.execute(q)}


DUPLICATE_STATUSES = ("succeeded", "running", "queued")  # a configuration in one of these need not run again


def duplicate_runs(db: DbLike, hashes: Iterable[str]) -> dict[str, tuple[int, str]]:
    """config_hash → (id, status) of a run that succeeded with it, or else is running or queued with it, for
    the given hashes: what a submit skips unless forced. Under db.runs.lock_submissions, it stays true
    until the submitting transaction commits."""
    wanted = sorted(set(hashes))
    if not wanted:
        return {}
    found: dict[str, tuple[int, str]] = {}
    with scope(db, read_only=True) as s:
        q = select(SqlRun.config_hash, SqlRun.id, SqlRun.status).where(
            SqlRun.status.in_(DUPLICATE_STATUSES), SqlRun.config_hash.in_(wanted)
        )
        for h, run_id, status in sorted(s.execute(q), key=lambda r: (DUPLICATE_STATUSES.index(r[2]), r[1])):
            found.setdefault(h, (run_id, status))
    return found


def load_latest(s: Session, run_ids: list[int]) -> dict[int, dict[str, float]]:
    """run id → {key: value at its newest step} inside an open session (NaN where NaN was logged)."""
    out: dict[int, dict[str, float]] = {}
    if not run_ids:
        return out
    for m in s.scalars(select(SqlLatestMetric).where(SqlLatestMetric.run_id.in_(run_ids))):
        out.setdefault(m.run_id, {})[m.key] = m.real_value
    return out


def stop_requested(db: DbLike, run_id: int, owner: str | None = None) -> bool:
    """True when a worker should stop this run: a cancel was requested, or the run is no longer running
    (deleted, finished, requeued) or, with ``owner``, no longer leased to that worker."""
    with scope(db, read_only=True) as s:
        row = s.execute(
            select(SqlRun.cancel_requested, SqlRun.status, SqlRun.lease_owner).where(SqlRun.id == run_id)
        ).first()
    if row is None or row.cancel_requested or row.status != "running":
        return True
    return owner is not None and row.lease_owner != owner
