"""Connected workers (db.tables.workers): announce, renew, leave, and who is connected now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from db.session import DbLike, db_now, scope
from db.tables import SqlWorker


@dataclass(frozen=True)
class WorkerRecord:
    name: str
    host: str
    kind: str  # "gpu" or "cpu"
    device: str
    queues: tuple[str, ...]
    started_at: datetime
    seen_at: datetime


def announce(db: DbLike, name: str, *, host: str, kind: str, device: str, queues: tuple[str, ...]) -> None:
    """Say this worker is here (again: a renewal that finds no row, e.g. after a long outage, re-creates it)."""
    with scope(db) as s:
        now = db_now(s)
        s.execute(delete(SqlWorker).where(SqlWorker.name == name))
        s.add(SqlWorker(name=name, host=host, kind=kind, device=device, queues=",".join(queues),
                        started_at=now, seen_at=now))  # fmt: skip


def renew(db: DbLike, name: str) -> bool:
    """Mark the worker seen now. False when its row is gone (announce it again)."""
    with scope(db) as s:
        return bool(s.execute(update(SqlWorker).where(SqlWorker.name == name).values(seen_at=db_now(s))).rowcount)


def leave(db: DbLike, name: str) -> None:
    with scope(db) as s:
        s.execute(delete(SqlWorker).where(SqlWorker.name == name))


def connected(db: DbLike, within_s: float) -> list[WorkerRecord]:
    """Workers seen in the last ``within_s`` seconds, by kind then name; rows older than a day are dropped
    by :func:`forget_stale` (workers killed without leaving)."""
    with scope(db, read_only=True) as s:
        cutoff = db_now(s) - timedelta(seconds=within_s)
        rows = s.scalars(select(SqlWorker).where(SqlWorker.seen_at >= cutoff).order_by(SqlWorker.kind, SqlWorker.name))
        return [WorkerRecord(w.name, w.host, w.kind, w.device, tuple(q for q in w.queues.split(",") if q),
                             w.started_at, w.seen_at) for w in rows]  # fmt: skip


def forget_stale(db: DbLike, older_than_s: float) -> int:
    """Delete the rows of workers not seen for ``older_than_s`` seconds (killed, never left)."""
    with scope(db) as s:
        cutoff = db_now(s) - timedelta(seconds=older_than_s)
        return s.execute(delete(SqlWorker).where(SqlWorker.seen_at < cutoff)).rowcount or 0
