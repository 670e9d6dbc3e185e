"""Cached reads behind the Compare and Present pages.

Each loader takes the database URL first (a string: it is the cache key, so two databases never share
entries) and caches for a few seconds, so reruns triggered by a slider don't hit the database while
running experiments still show new points soon. Results are plain records, DataFrames and arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from db import experiments, metrics, run_queries
from db.records import ExperimentRecord, ProbeLayerRecord, RunRecord

TTL = 5


def db_url() -> str:
    from skipweb.settings import get_settings

    return get_settings().db_url


@st.cache_data(ttl=TTL, show_spinner=False)
def list_experiments(url: str) -> list[ExperimentRecord]:
    return experiments.list_experiments(url)


@st.cache_data(ttl=TTL, show_spinner=False)
def experiment_runs(url: str, experiment_id: int) -> list[RunRecord]:
    return sorted(run_queries.list_runs(url, experiment_id=experiment_id, limit=None), key=lambda r: r.id)


@st.cache_data(ttl=TTL, show_spinner=False)
def runs_by_id(url: str, run_ids: tuple[int, ...]) -> list[RunRecord]:
    return sorted(run_queries.list_runs(url, run_ids=list(run_ids), limit=None), key=lambda r: r.id)


@st.cache_data(ttl=TTL, show_spinner=False)
def all_runs(url: str, limit: int = 500) -> list[RunRecord]:
    return run_queries.list_runs(url, limit=limit)


@st.cache_data(ttl=TTL, show_spinner=False)
def metric_frame(url: str, run_ids: tuple[int, ...], keys: tuple[str, ...] | None = None) -> pd.DataFrame:
    return metrics.read_metrics(url, list(run_ids), keys=None if keys is None else list(keys))


@st.cache_data(ttl=TTL, show_spinner=False)
def metric_keys(url: str, run_ids: tuple[int, ...]) -> list[str]:
    """Keys that have a latest value for any of the runs (cheap: latest_metrics, not the history)."""
    return sorted({k for d in metrics.latest(url, list(run_ids)).values() for k in d})


@st.cache_data(ttl=TTL, show_spinner=False)
def grad_matrices(
    url: str, run_ids: tuple[int, ...], stat: str = "grad_norm"
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    return metrics.read_grad(url, list(run_ids), stat=stat)


@st.cache_data(ttl=TTL, show_spinner=False)
def probe_layers(url: str, run_ids: tuple[int, ...]) -> dict[int, list[ProbeLayerRecord]]:
    return metrics.read_probe_layers(url, list(run_ids))


@st.cache_data(ttl=TTL, show_spinner=False)
def latest_values(url: str, run_ids: tuple[int, ...]) -> dict[int, dict[str, float]]:
    return metrics.latest(url, list(run_ids))


def ids(run_ids: Sequence[int]) -> tuple[int, ...]:
    """A canonical cache key for a set of runs."""
    return tuple(sorted({int(i) for i in run_ids}))


@st.cache_data(ttl=TTL, show_spinner=False)
def metric_display(url: str, run_ids: tuple[int, ...], key: str, max_points: int = 2000) -> pd.DataFrame:
    """read_metrics' frame for one key, for display: a run with more than ``max_points`` rows is averaged
    over buckets of ``k`` consecutive steps inside the database (k = ceil(rows / (max_points - 1))), so
    a 200-epoch per-step series costs < 2,000 rows, not 20,000, on the way out. Short series come back whole.
    Bucket rows carry the bucket's mean step, epoch, value and wall (NaN where every value was NaN)."""
    from sqlalchemy import func, select

    from db.session import scope
    from db.tables import SqlMetric as M

    with scope(url, read_only=True) as s:
        counts = dict(
            s.execute(
                select(M.run_id, func.count()).where(M.run_id.in_(run_ids), M.key == key).group_by(M.run_id)
            ).all()
        )
    whole = tuple(r for r in run_ids if counts.get(r, 0) <= max_points)
    frames = [metrics.read_metrics(url, whole, keys=[key])] if whole else []
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
        with scope(url, read_only=True) as s:
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
                columns=metrics.METRIC_COLUMNS,
            )
        )
    if not frames:
        return metrics.read_metrics(url, (), keys=[key])
    return pd.concat(frames, ignore_index=True).sort_values(["run_id", "step"], ignore_index=True)
