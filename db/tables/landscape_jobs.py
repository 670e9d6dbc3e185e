"""Requests for loss landscapes: the row the UI (or the launcher) writes before a worker computes one.

``pending``: asked for at launch, waits for its run to succeed (the worker that finishes the run queues
it). ``queued`` → ``running`` → ``succeeded`` | ``failed`` (with ``reason``) as for runs, with a lease
(``lease_owner``, ``heartbeat_at``) that the sweep takes back from a worker that stopped heartbeating.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base
from db.coltypes import UTCDateTime, utcnow
from skipweb.facts import LANDSCAPE_JOB_STATUSES

_STATUS_SQL = ", ".join(f"'{s}'" for s in LANDSCAPE_JOB_STATUSES)


class SqlLandscapeJob(Base):
    __tablename__ = "landscape_jobs"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_SQL})", name="status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    grid: Mapped[int] = mapped_column(Integer)
    range: Mapped[float] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    subset: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    # lease (as for runs): the worker computing it renews heartbeat_at; attempts counts claims
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
