"""Loss landscapes: store one computed slice (skipweb.training.landscape) and read a run's latest one back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from db.session import DbLike, scope
from db.tables import SqlLandscape
from db.tables.landscapes import LANDSCAPE_KINDS


@dataclass(frozen=True)
class LandscapeRecord:
    id: int
    run_id: int
    kind: str  # '2d' | '1d' | 'interp'
    grid: int
    range: float
    seed: int
    subset: int | None
    x: list[float]
    y: list[float] | None
    loss: list[Any]  # '2d': rows, loss[i][j] at (x[j], y[i]); else a flat list over x
    created_at: datetime


def save_landscape(
    db: DbLike,
    run_id: int,
    kind: str,
    *,
    grid: int,
    range_: float,
    seed: int,
    subset: int | None,
    x: Sequence[float],
    y: Sequence[float] | None,
    loss: Sequence[Any],
) -> int:
    """Insert one slice; return its id. Non-finite losses should be None already (JSON has no NaN)."""
    if kind not in LANDSCAPE_KINDS:
        raise ValueError(f"unknown landscape kind {kind!r}; choose one of: {', '.join(LANDSCAPE_KINDS)}")
    with scope(db) as s:
        row = SqlLandscape(
            run_id=run_id,
            kind=kind,
            grid=grid,
            range=float(range_),
            seed=seed,
            subset=subset,
            x=list(x),
            y=None if y is None else list(y),
            loss=list(loss),
        )
        s.add(row)
        s.flush()
        return row.id


def latest_landscape(db: DbLike, run_id: int, kind: str = "2d") -> LandscapeRecord | None:
    """The run's newest slice of ``kind``, or None."""
    with scope(db, read_only=True) as s:
        row = s.scalars(
            select(SqlLandscape)
            .where(SqlLandscape.run_id == run_id, SqlLandscape.kind == kind)
            .order_by(SqlLandscape.id.desc())
            .limit(1)
        ).first()
        return None if row is None else _record(row)


def latest_landscapes(db: DbLike, run_ids: Sequence[int], kind: str = "2d") -> dict[int, LandscapeRecord]:
    """run id → its newest slice of ``kind``, for the runs that have one (one query for a whole page)."""
    if not run_ids:
        return {}
    newest = (
        select(func.max(SqlLandscape.id))
        .where(SqlLandscape.run_id.in_(list(run_ids)), SqlLandscape.kind == kind)
        .group_by(SqlLandscape.run_id)
    )
    with scope(db, read_only=True) as s:
        return {
            r.run_id: _record(r) for r in s.scalars(select(SqlLandscape).where(SqlLandscape.id.in_(newest)))
        }


def _record(row: SqlLandscape) -> LandscapeRecord:
    return LandscapeRecord(
        row.id,
        row.run_id,
        row.kind,
        row.grid,
        row.range,
        row.seed,
        row.subset,
        list(row.x),
        None if row.y is None else list(row.y),
        list(row.loss),
        row.created_at,
    )
