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
