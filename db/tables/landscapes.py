"""Loss landscapes of a run (skipweb.training.landscape): a 2-D surface, a 1-D slice or the
initial→final line.

One row per computed slice; the values are small (a 21×21 grid is 441 floats), so they are stored as JSON.
``kind`` '2d': ``x``, ``y`` coordinates and ``loss`` rows (``loss[i][j]`` at ``(x[j], y[i])``); '1d': ``x``
and ``loss`` a flat list, ``y`` null; 'interp': ``x`` the alphas and ``loss`` a flat list, ``y`` null.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import JSON

from db.base import Base
from db.coltypes import UTCDateTime, utcnow

LANDSCAPE_KINDS = ("2d", "1d", "interp")
_KINDS_SQL = ", ".join(f"'{k}'" for k in LANDSCAPE_KINDS)


class SqlLandscape(Base):
    __tablename__ = "landscapes"
    __table_args__ = (CheckConstraint(f"kind IN ({_KINDS_SQL})", name="kind"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    grid: Mapped[int] = mapped_column(Integer)
    range: Mapped[float] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(Integer)
    subset: Mapped[int | None] = mapped_column(Integer)
    x: Mapped[list[float]] = mapped_column(JSON)
    y: Mapped[list[float] | None] = mapped_column(JSON)
    loss: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
