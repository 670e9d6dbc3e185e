"""The one lease a worker holds on a row it works on: a run, or a loss-landscape job.

A leased table has ``status``, ``attempts``, ``lease_owner``, ``heartbeat_at``, ``started_at``,
``finished_at`` and ``reason``. Every state change is one conditional UPDATE whose row count says
whether it applied, so two workers, two sweepers, or a worker and a user racing on one row cannot both
win, on SQLite and PostgreSQL alike:

- :meth:`Lease.claim`: ``queued`` → ``running``, attempts + 1, leased to the worker;
- :meth:`Lease.renew`: the holder's heartbeat (with any values it records), False once it lost the lease;
- :meth:`Lease.finish`: the holder ends the row with a final status and clears the lease;
- :meth:`Lease.requeue_expired`: the sweep takes rows whose holder stopped heartbeating back to
  ``queued`` (to resume), or ends them past ``max_attempts``.

``db.runs`` and ``db.landscape_jobs`` each declare one ``Lease`` over their table; nothing else writes
these columns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Update, or_, select, update

from db.coltypes import coalesce_now
from db.session import DbLike, db_now, scope

_UNSEEN = object()


def gave_up(attempts: int, who: str) -> str:
    # "stopped heartbeating", not "died": a worker frozen (SIGSTOP, a paused VM) or cut off loses its lease
    # the same way; a live worker waiting out a database outage keeps it (services.execution)
    return f"gave up after {attempts} attempts: its worker stopped heartbeating each time (last: {who})"


@dataclass(frozen=True)
class Lease:
    table: Any  # a mapped class with the lease columns
    final: tuple[str, ...]  # the statuses finish() may set

    def owned(self, row_id: int, owner: str | None) -> Update:
        """UPDATE of the row while ``owner`` holds it (running, leased to ``owner``)."""
        t = self.table
        return update(t).where(t.id == row_id, t.status == "running", t.lease_owner == owner)

    def held(self, db: DbLike, row_id: int, owner: str) -> bool:
        """True while ``owner`` holds the row (running, leased to it): the fence before a write."""
        t = self.table
        with scope(db, read_only=True) as s:
            q = select(t.id).where(t.id == row_id, t.status == "running", t.lease_owner == owner)
            return s.scalar(q) is not None

    def claim(self, db: DbLike, row_id: int, owner: str, **values: Any) -> bool:
        """Take a queued row: running, attempts + 1, leased to ``owner`` (plus ``values``). False when it is
        not queued any more (taken, finished, unknown). ``started_at`` keeps the first claim's time."""
        t = self.table
        with scope(db) as s:
            now = db_now(s)
            res = s.execute(
                update(t)
                .where(t.id == row_id, t.status == "queued")
                .values(
                    status="running",
                    attempts=t.attempts + 1,
                    lease_owner=owner,
                    heartbeat_at=now,
                    started_at=coalesce_now(t.started_at, now),
                    **values,
                )
            )
            return res.rowcount == 1

    def renew(self, db: DbLike, row_id: int, owner: str, **values: Any) -> bool:
        """Renew ``owner``'s lease (recording ``values``). False when it no longer holds it: the sweep
        requeued the row after a missed lease, or it ended or was deleted. The worker must stop writing."""
        with scope(db) as s:
            return s.execute(self.owned(row_id, owner).values(heartbeat_at=db_now(s), **values)).rowcount == 1

    def finish(self, db: DbLike, row_id: int, owner: str | None, status: str, reason: str | None) -> bool:
        """End the row held by ``owner`` with a final ``status``; clears the lease. False if not its lease."""
        if status not in self.final:
            raise ValueError(f"final status must be one of {', '.join(self.final)}, not {status!r}")
        with scope(db) as s:
            res = s.execute(
                self.owned(row_id, owner).values(
                    status=status, reason=reason, finished_at=db_now(s), lease_owner=None
                )
            )
            return res.rowcount == 1

    def release(self, db: DbLike, row_id: int, owner: str, reason: str) -> bool:
        """The holder hands the row back: queued again with the lease cleared and this attempt not counted
        (the worker could not reach the database; nothing was wrong with the work). False if not its lease."""
        t = self.table
        with scope(db) as s:
            res = s.execute(
                self.owned(row_id, owner).values(
                    status="queued", attempts=t.attempts - 1, lease_owner=None, heartbeat_at=None, reason=reason
                )
            )
            return res.rowcount == 1

    def requeue_expired(
        self,
        db: DbLike,
        lease_seconds: float,
        max_attempts: int,
        ending: Callable[[Any, str], Mapping[str, Any] | None] | None = None,
        seen: dict[int, Any] | None = None,
    ) -> tuple[list[int], list[int]]:
        """For the sweep: running rows whose holder stopped heartbeating for ``lease_seconds``.

        Below ``max_attempts`` a row goes back to queued (attempts kept; a run resumes from its
        checkpoint); at the cap it fails. ``ending(row, who)`` may end a row otherwise (a run whose cancel
        was requested is cancelled) by returning its final values. Returns (requeued ids, ended ids).
        Safe from several sweepers at once: FOR UPDATE SKIP LOCKED on PostgreSQL (SQLite serialises
        writers anyway), and each UPDATE re-checks that the row is still expired.

        ``seen`` (a sweeper's memory between its calls, updated in place): take a row only when the previous
        call already found it expired with the same ``heartbeat_at``. After a database outage longer than
        the lease every lease looks expired, the live holders' too; a live holder renews as soon as the
        database answers (every heartbeat), so by the next sweep only the dead ones are still unchanged.
        Without ``seen`` an expired row is taken at once.
        """
        t = self.table
        requeued: list[int] = []
        ended: list[int] = []
        with scope(db) as s:
            now = db_now(s)
            expired = (
                t.status == "running",
                or_(t.heartbeat_at < now - timedelta(seconds=lease_seconds), t.heartbeat_at.is_(None)),
            )
            rows = s.scalars(select(t).where(*expired).order_by(t.id).with_for_update(skip_locked=True)).all()
            if seen is not None:
                first = {r.id: r.heartbeat_at for r in rows if seen.get(r.id, _UNSEEN) != r.heartbeat_at}
                seen.clear()
                seen.update(first)
                rows = [r for r in rows if r.id not in first]
            for row in rows:
                who = row.lease_owner or "unknown"
                values = dict(ending(row, who) or {}) if ending else {}
                if values:
                    values.setdefault("finished_at", now)
                elif row.attempts >= max_attempts:
                    values = {"status": "failed", "finished_at": now, "reason": gave_up(row.attempts, who)}
                else:
                    values = {
                        "status": "queued",
                        "heartbeat_at": None,
                        "reason": f"worker {who} stopped heartbeating; requeued",
                    }
                res = s.execute(update(t).where(t.id == row.id, *expired).values(lease_owner=None, **values))
                if res.rowcount == 1:
                    (requeued if values["status"] == "queued" else ended).append(row.id)
        return requeued, ended
