"""Scalar metric history and the small latest-value table that serves run lists."""

from __future__ import annotations

import math

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class SqlMetric(Base):
    """One value of one key at one optimizer step; a replayed (run, key, step) replaces the row.

    NaN is stored explicitly as ``is_nan`` with ``value`` NULL on every backend: SQLite silently turns a
    bound NaN into NULL, and a NULL keeps NaN out of SQL aggregates such as MIN(value). ±inf round-trips
    natively on SQLite and PostgreSQL.
    """

    __tablename__ = "metrics"
    # The primary key is the (run, key, step) index; on SQLite WITHOUT ROWID clusters the small rows by it
    # so reading one run's series is one contiguous range scan.
    __table_args__ = {"sqlite_with_rowid": False}

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[float] = mapped_column(Float)
    value: Mapped[float | None] = mapped_column(Float)
    is_nan: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    wall: Mapped[float] = mapped_column(Float)

    @property
    def real_value(self) -> float:
        return math.nan if self.is_nan else float(self.value)  # type: ignore[arg-type]


class SqlLatestMetric(Base):
    """The value at the newest step of each (run, key), updated in the same transaction as the batch."""

    __tablename__ = "latest_metrics"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    step: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[float] = mapped_column(Float)
    value: Mapped[float | None] = mapped_column(Float)
    is_nan: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    wall: Mapped[float] = mapped_column(Float)

    @property
    def real_value(self) -> float:
        return math.nan if self.is_nan else float(self.value)  # type: ignore[arg-type]
