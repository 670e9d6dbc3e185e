"""Per-block probes in the database: the block list of a run and one packed row per probe step.

Writes happen inside :func:`db.metrics.write_batch` / :func:`db.runs.set_info` transactions (same lease
fencing, same upsert idempotence); this module holds the row builders and the reads behind the charts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.session import DbLike, scope
from db.tables import SqlBlockLayer, SqlBlockStep
from db.tables.blocks import BLOCK_STATS

_FLOAT32 = np.dtype("<f4")


@dataclass(frozen=True)
class BlockLayerRecord:
    idx: int
    name: str
    kind: str  # add | concat | gate | long | none


@dataclass
class BlockSeries:
    """One run's block probes: ``stats[name]`` is float32[steps × blocks], columns in ``layers`` order."""

    layers: list[BlockLayerRecord] = field(default_factory=list)
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    epochs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stats: dict[str, np.ndarray] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return len(self.steps) > 0 and len(self.layers) > 0

    def ratio(self) -> np.ndarray:
        """skip/branch gradient ratio, steps × blocks (NaN where a block has no skip path)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.stats["skip_grad"] / self.stats["branch_grad"]


def replace_layers(s: Session, run_id: int, blocks: Iterable[Any]) -> None:
    """Replace the run's block list (a resumed attempt rebuilds the same model and calls this again)."""
    s.execute(delete(SqlBlockLayer).where(SqlBlockLayer.run_id == run_id))
    s.add_all(
        SqlBlockLayer(run_id=run_id, idx=int(b.index), name=str(b.name), kind=str(b.kind)) for b in blocks
    )


def step_row(run_id: int, p: Any) -> dict[str, Any] | None:
    """The block_steps row of a ProbePoint, or None when it carries no block statistics."""
    if not getattr(p, "skip_grad", None):
        return None
    arrays = [np.asarray(getattr(p, k), dtype=_FLOAT32) for k in BLOCK_STATS]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(f"probe step {p.step}: block statistics need one value per block each")
    return {
        "run_id": run_id,
        "step": int(p.step),
        "epoch": float(p.epoch),
        **{k: a.tobytes() for k, a in zip(BLOCK_STATS, arrays, strict=True)},
    }


def read_blocks(
    db: DbLike, run_ids: Iterable[int], stats: Iterable[str] = BLOCK_STATS
) -> dict[int, BlockSeries]:
    """run id → its :class:`BlockSeries` (empty for runs without block probes)."""
    ids, names = list(run_ids), list(stats)
    bad = [n for n in names if n not in BLOCK_STATS]
    if bad:
        raise ValueError(f"unknown block statistic(s) {bad}; choose from {', '.join(BLOCK_STATS)}")
    out = {i: BlockSeries() for i in ids}
    cols = [getattr(SqlBlockStep, n) for n in names]
    with scope(db, read_only=True) as s:
        for layer in s.scalars(
            select(SqlBlockLayer)
            .where(SqlBlockLayer.run_id.in_(ids))
            .order_by(SqlBlockLayer.run_id, SqlBlockLayer.idx)
        ):
            out[layer.run_id].layers.append(BlockLayerRecord(layer.idx, layer.name, layer.kind))
        rows = s.execute(
            select(SqlBlockStep.run_id, SqlBlockStep.step, SqlBlockStep.epoch, *cols)
            .where(SqlBlockStep.run_id.in_(ids))
            .order_by(SqlBlockStep.run_id, SqlBlockStep.step)
        ).all()
    by_run: dict[int, list] = {i: [] for i in ids}
    for row in rows:
        by_run[row[0]].append(row)
    for run_id, items in by_run.items():
        if not items:
            continue
        series = out[run_id]
        width = len(series.layers)
        series.steps = np.array([r[1] for r in items], dtype=np.int64)
        series.epochs = np.array([r[2] for r in items], dtype=np.float64)
        for j, name in enumerate(names):
            m = np.full((len(items), width), np.nan, dtype=np.float32)
            for i, r in enumerate(items):
                a = np.frombuffer(r[3 + j], dtype=_FLOAT32)[:width]
                m[i, : len(a)] = a
            series.stats[name] = m
    return out
