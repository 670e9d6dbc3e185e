"""Metric and probe writes (one transaction per trainer flush) and the reads behind the charts.

Writes are idempotent: a replayed (run, key, step) or (run, step) replaces the row, so a worker that
resumes from a checkpoint and re-runs a few steps never duplicates history. Each batch is one bulk
``INSERT ... ON CONFLICT DO UPDATE`` per table, in the dialect's own upsert syntax: on SQLite an
executemany, on PostgreSQL one statement over binary arrays (``unnest``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Insert, String, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db import blocks
from db.records import PROBE_STATS, ProbeLayerRecord
from db.run_queries import load_latest
from db.session import DbLike, scope
from db.tables import SqlBlockStep, SqlLatestMetric, SqlMetric, SqlProbeLayer, SqlProbeStep, SqlRun

# (key, step, epoch, value, wall) or an object with those attributes (skipweb.training.sinks.MetricPoint)
MetricLike = Sequence[Any] | Any
# (step, epoch, grad_norm, weight_norm, update_ratio) or an object with those attributes (ProbePoint)
ProbeLike = Sequence[Any] | Any
METRIC_COLUMNS = ["run_id", "key", "step", "epoch", "value", "wall"]
_FLOAT32 = np.dtype("<f4")  # packed probe arrays: little-endian float32, whatever the host's byte order


def write_batch(
    db: DbLike,
    run_id: int,
    metrics: Iterable[MetricLike] = (),
    probes: Iterable[ProbeLike] = (),
    owner: str | None = None,
) -> bool:
    """Upsert one flush worth of metrics and probe steps and refresh latest_metrics, in one transaction.

    With ``owner``, writes only while that worker holds the run's lease and returns False otherwise (a
    worker that lost its lease must stop, not overwrite its successor's numbers). NaN and ±inf are kept.
    """
    # Last write wins inside a batch too; PostgreSQL rejects one statement touching a row twice.
    mrows = list({(r["key"], r["step"]): r for r in (_metric_row(run_id, m) for m in metrics)}.values())
    probes = list(probes)
    prows = list({r["step"]: r for r in (_probe_row(run_id, p) for p in probes)}.values())
    brows = list({r["step"]: r for p in probes if (r := blocks.step_row(run_id, p))}.values())
    with scope(db) as s:
        if owner is not None and not _holds_lease(s, run_id, owner):
            return False
        if mrows:
            _upsert(s, SqlMetric.__table__, mrows, ["run_id", "key", "step"])
            newest: dict[str, dict[str, Any]] = {}
            for r in mrows:
                if r["key"] not in newest or r["step"] > newest[r["key"]]["step"]:
                    newest[r["key"]] = r
            # only move forward: a replayed older step must not hide a newer value
            _upsert(s, SqlLatestMetric.__table__, list(newest.values()), ["run_id", "key"], forward_only=True)
        if prows:
            _upsert(s, SqlProbeStep.__table__, prows, ["run_id", "step"])
        if brows:
            _upsert(s, SqlBlockStep.__table__, brows, ["run_id", "step"])
    return True


def read_metrics(
    db: DbLike, run_ids: Iterable[int], keys: Iterable[str] | None = None, after_step: int | None = None
) -> pd.DataFrame:
    """Long DataFrame ``run_id, key, step, epoch, value, wall`` sorted by run, key, step.

    ``after_step`` returns only newer rows, for live charts that append.
    """
    t = SqlMetric
    q = select(t.run_id, t.key, t.step, t.epoch, t.value, t.is_nan, t.wall).where(t.run_id.in_(list(run_ids)))
    if keys is not None:
        q = q.where(t.key.in_(list(keys)))
    if after_step is not None:
        q = q.where(t.step > after_step)
    with scope(db, read_only=True) as s:
        rows = s.execute(q.order_by(t.run_id, t.key, t.step)).all()
    cols = list(zip(*rows, strict=True)) if rows else [()] * 7
    value = np.array(cols[4], dtype=np.float64)  # None (NaN stored as NULL) becomes nan here
    value[np.array(cols[5], dtype=bool)] = np.nan
    return pd.DataFrame(
        {
            "run_id": np.array(cols[0], dtype=np.int64),
            "key": pd.Series(cols[1], dtype=object),
            "step": np.array(cols[2], dtype=np.int64),
            "epoch": np.array(cols[3], dtype=np.float64),
            "value": value,
            "wall": np.array(cols[6], dtype=np.float64),
        },
        columns=METRIC_COLUMNS,
    )


def read_grad(
    db: DbLike, run_ids: Iterable[int], stat: str = "grad_norm", steps: Iterable[int] | None = None
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """run id → (steps int64[n], float32[n × layers]) of one probe statistic, layers in probe order.

    Every requested run is present; a run without probes has empty arrays. ``steps`` restricts the rows
    (e.g. one step for a per-layer profile).
    """
    if stat not in PROBE_STATS:
        raise ValueError(f"stat must be one of {', '.join(PROBE_STATS)}, not {stat!r}")
    ids = list(run_ids)
    col = getattr(SqlProbeStep, stat)
    q = select(SqlProbeStep.run_id, SqlProbeStep.step, col).where(SqlProbeStep.run_id.in_(ids))
    if steps is not None:
        q = q.where(SqlProbeStep.step.in_(list(steps)))
    with scope(db, read_only=True) as s:
        rows = s.execute(q.order_by(SqlProbeStep.run_id, SqlProbeStep.step)).all()
    by_run: dict[int, list[tuple[int, bytes]]] = {i: [] for i in ids}
    for run_id, step, blob in rows:
        by_run[run_id].append((step, blob))
    return {run_id: _matrix(items) for run_id, items in by_run.items()}


def read_probe_layers(db: DbLike, run_ids: Iterable[int]) -> dict[int, list[ProbeLayerRecord]]:
    """run id → its probe layers in order (index i names column i of :func:`read_grad`'s matrix)."""
    ids = list(run_ids)
    q = select(SqlProbeLayer).where(SqlProbeLayer.run_id.in_(ids))
    out: dict[int, list[ProbeLayerRecord]] = {i: [] for i in ids}
    with scope(db, read_only=True) as s:
        for layer in s.scalars(q.order_by(SqlProbeLayer.run_id, SqlProbeLayer.idx)):
            out[layer.run_id].append(layer.to_record())
    return out


def read_probes_long(db: DbLike, run_ids: Iterable[int]) -> pd.DataFrame:
    """Every probe statistic as :func:`read_metrics` rows: key ``probe/<stat>/<layer>``, one row per step and
    layer (for export; the charts read the packed matrices with :func:`read_grad`)."""
    ids = list(run_ids)
    layers = read_probe_layers(db, ids)
    with scope(db, read_only=True) as s:
        epochs = dict(((r, st), e) for r, st, e in s.execute(
            select(SqlProbeStep.run_id, SqlProbeStep.step, SqlProbeStep.epoch).where(SqlProbeStep.run_id.in_(ids))))
    frames = [pd.DataFrame(columns=METRIC_COLUMNS)]
    for stat in PROBE_STATS:
        for run_id, (steps, matrix) in read_grad(db, ids, stat).items():
            names = np.array([f"probe/{stat}/{layer.name}" for layer in layers[run_id]], dtype=object)
            if not len(steps) or not len(names):
                continue
            n = min(len(names), matrix.shape[1])
            frames.append(pd.DataFrame({
                "run_id": run_id, "key": np.tile(names[:n], len(steps)), "step": np.repeat(steps, n),
                "epoch": np.repeat([epochs[run_id, int(st)] for st in steps], n),
                "value": matrix[:, :n].astype(np.float64).ravel(), "wall": np.nan}))  # fmt: skip
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return out.sort_values(["run_id", "key", "step"], kind="stable", ignore_index=True)


def latest(db: DbLike, run_ids: Iterable[int]) -> dict[int, dict[str, float]]:
    """run id → {key: value at the newest step}, from latest_metrics (no history scan)."""
    with scope(db, read_only=True) as s:
        return load_latest(s, list(run_ids))


# ---- helpers ------------------------------------------------------------------------------------------
def _upsert(
    s: Session, table: Table, rows: list[dict[str, Any]], keys: list[str], forward_only: bool = False
) -> None:
    dialect = s.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"skipweb supports SQLite and PostgreSQL, not {dialect}")
    if dialect == "postgresql" and len(rows) >= ARRAY_MIN_ROWS and _array_upsert(s, table, rows, keys, forward_only):
        return
    stmt: Insert = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    excluded = stmt.excluded  # type: ignore[attr-defined]
    stmt = stmt.on_conflict_do_update(  # type: ignore[attr-defined]
        index_elements=keys,
        set_={c: excluded[c] for c in rows[0] if c not in keys},
        where=(table.c.step <= excluded.step) if forward_only else None,
    )
    s.execute(stmt, rows)  # executemany: SQLAlchemy batches it into multi-row VALUES


# PostgreSQL: from this many rows (every batch; the benchmark raises it for its baseline), one statement
# with one array per column, ``INSERT ... SELECT FROM unnest(...) ON CONFLICT``, sent in binary: no temporary
# table, one round trip (bench/db_ingest.py; bench/RESULTS.md compares it with executemany and COPY).
ARRAY_MIN_ROWS = 1


def _array_upsert(s: Session, table: Table, rows: list[dict[str, Any]], keys: list[str], forward_only: bool) -> bool:
    """The same upsert as :func:`_upsert` as one ``unnest`` of binary arrays, in the session's transaction.
    Returns False (nothing written) when the driver is not psycopg 3."""
    if s.get_bind().dialect.driver != "psycopg":  # binary parameters (%b) are psycopg 3's
        return False
    cols = list(rows[0])
    pg = postgresql.dialect()
    # Arrays typed even when every element is NULL; strings without their length, so that an over-long key
    # fails the column's own check as in a plain INSERT (an explicit ::VARCHAR(128) cast would truncate).
    types = {c.name: "VARCHAR" if isinstance(c.type, String) else c.type.compile(dialect=pg) for c in table.columns}
    listed = ", ".join(f'"{c}"' for c in cols)
    arrays = ", ".join(f"%b::{types[c]}[]" for c in cols)
    sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in cols if c not in keys)
    where = f' WHERE "{table.name}".step <= EXCLUDED.step' if forward_only else ""
    # through SQLAlchemy (not the raw cursor), so that errors arrive wrapped and db.retry sees transient ones
    s.connection().exec_driver_sql(
        f'INSERT INTO "{table.name}" ({listed}) SELECT * FROM unnest({arrays}) '
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}{where}",
        tuple([r[c] for r in rows] for c in cols),  # one positional parameter set: one array per column
    )
    return True


def _holds_lease(s: Session, run_id: int, owner: str) -> bool:
    # FOR SHARE (PostgreSQL) keeps a sweeper from requeueing the run until this batch commits;
    # SQLite needs nothing: BEGIN IMMEDIATE already excludes every other writer.
    q = select(SqlRun.lease_owner, SqlRun.status).where(SqlRun.id == run_id).with_for_update(read=True)
    row = s.execute(q).first()
    return row is not None and row.status == "running" and row.lease_owner == owner


def _metric_row(run_id: int, m: MetricLike) -> dict[str, Any]:
    key, step, epoch, value, wall = (m.key, m.step, m.epoch, m.value, m.wall) if hasattr(m, "key") else m
    value = float(value)
    nan = math.isnan(value)
    return {
        "run_id": run_id,
        "key": str(key),
        "step": int(step),
        "epoch": float(epoch),
        "value": None if nan else value,  # SQLite would turn NaN into NULL anyway; say so explicitly
        "is_nan": nan,
        "wall": float(wall),
    }


def _probe_row(run_id: int, p: ProbeLike) -> dict[str, Any]:
    if hasattr(p, "step"):
        p = (p.step, p.epoch, p.grad_norm, p.weight_norm, p.update_ratio)
    step, epoch, *stats = p
    arrays = [np.asarray(a, dtype=_FLOAT32) for a in stats]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1:
        raise ValueError(f"probe step {step}: the three statistics need one value per layer each")
    return {
        "run_id": run_id,
        "step": int(step),
        "epoch": float(epoch),
        **{name: a.tobytes() for name, a in zip(PROBE_STATS, arrays, strict=True)},
    }


def _matrix(items: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    steps = np.array([st for st, _ in items], dtype=np.int64)
    arrays = [np.frombuffer(b, dtype=_FLOAT32) for _, b in items]
    width = max((len(a) for a in arrays), default=0)
    matrix = np.full((len(arrays), width), np.nan, dtype=np.float32)  # ragged rows (never expected) pad
    for i, a in enumerate(arrays):
        matrix[i, : len(a)] = a
    return steps, matrix


def read_metrics_display(db: DbLike, run_ids: Sequence[int], key: str, max_points: int = 2000) -> pd.DataFrame:
    """:func:`read_metrics`' frame for one key, for display: a run with more than ``max_points`` rows is
    averaged over buckets of ``k`` consecutive steps inside the database (k = ceil(rows / (max_points - 1))),
    so a 200-epoch per-step series costs < 2,000 rows, not 20,000, on the way out. Short series come back
    whole. Bucket rows carry the bucket's mean step, epoch, value and wall (NaN where every value was NaN)."""
    M = SqlMetric
    run_ids = [int(r) for r in run_ids]
    with scope(db, read_only=True) as s:
        counts = dict(
            s.execute(
                select(M.run_id, func.count()).where(M.run_id.in_(run_ids), M.key == key).group_by(M.run_id)
            ).all()
        )
    whole = [r for r in run_ids if counts.get(r, 0) <= max_points]
    frames = [read_metrics(db, whole, keys=[key])] if whole else []
    by_k: dict[int, list[int]] = {}
    for r in run_ids:
        if counts.get(r, 0) > max_points:
            by_k.setdefault(-(-counts[r] // (max_points - 1)), []).append(r)  # ≤ max_points buckets
    for k, rids in by_k.items():
        bucket = M.step // k
        q = (
            select(M.run_id, func.avg(M.step), func.avg(M.epoch), func.avg(M.value), func.avg(M.wall))
            .where(M.run_id.in_(rids), M.key == key)
            .group_by(M.run_id, bucket)
            .order_by(M.run_id, bucket)
        )
        with scope(db, read_only=True) as s:
            rows = s.execute(q).all()
        arr = np.array([tuple(np.nan if v is None else v for v in row) for row in rows], dtype=np.float64)
        frames.append(
            pd.DataFrame(
                {
                    "run_id": arr[:, 0].astype(np.int64),
                    "key": key,
                    "step": np.rint(arr[:, 1]).astype(np.int64),
                    "epoch": arr[:, 2],
                    "value": arr[:, 3],
                    "wall": arr[:, 4],
                },
                columns=METRIC_COLUMNS,
            )
        )
    if not frames:
        return read_metrics(db, (), keys=[key])
    return pd.concat(frames, ignore_index=True).sort_values(["run_id", "step"], ignore_index=True)
