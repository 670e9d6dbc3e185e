"""Connected workers: each worker process announces itself, renews ``seen_at`` every heartbeat and leaves
when it stops. The Launch page, the Runs page and ``skipweb status`` read it to say where runs will go and
which queued runs wait for a kind of worker that nobody runs (skipweb.services.presence)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base
from db.coltypes import UTCDateTime, utcnow


class SqlWorker(Base):
    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)  # Celery's hostname: kind, pid and host
    host: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(8))  # "gpu" or "cpu": which queues it consumes (skipweb.facts)
    device: Mapped[str] = mapped_column(String(255))  # e.g. "NVIDIA H200" or "cpu"
    queues: Mapped[str] = mapped_column(String(64))  # comma list
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
