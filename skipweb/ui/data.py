"""The UI's one data layer: every read a page makes, cached under one policy, and one ``clear()``.

Policy: a database read (:func:`read`) is cached for ``TTL`` seconds, keyed by the database URL first (so
two databases never share entries): reruns triggered by a slider do not hit the database, and running
experiments still show new points within seconds. Pure computations keyed by everything they depend on
(a model's size, a checkpoint's predictions keyed by its mtime) are cached without expiry. After a write
(launch, cancel, delete, retry) a page calls :func:`clear`, which drops every database read at once.
Figures that every viewer of a page would build alike are shared (:func:`shared`) under the same TTL.
Results are plain records, DataFrames and arrays; pages never see a table class or write SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import streamlit as st

from db import blocks, landscapes, metrics, queries, run_queries
from db.records import ExperimentRecord, ProbeLayerRecord, RunRecord
from db.session import get_engine
from skipweb.settings import get_settings

TTL = 3
F = TypeVar("F", bound=Callable[..., Any])
_READS: list[Any] = []


def read(fn: F) -> F:
    """A cached database read (TTL seconds), cleared by :func:`clear`."""
    cached = st.cache_data(ttl=TTL, show_spinner=False)(fn)
    _READS.append(cached)
    return cached  # type: ignore[return-value]


def clear() -> None:
    """After a write: drop every cached database read, so the next one is fresh."""
    for fn in _READS:
        fn.clear()


def shared(fn: F) -> F:
    """A figure (or a figure's input) built once per TTL for every viewer: twenty people opening the same
    Compare page share one object instead of building twenty (bench/viewers.py). Not copied, so callers must
    not change it: Present copies a figure (``go.Figure(fig)``) before enlarging its fonts. Cleared by
    :func:`clear`."""
    cached = st.cache_resource(ttl=TTL, max_entries=256, show_spinner=False)(fn)
    _READS.append(cached)
    return cached  # type: ignore[return-value]


def db_url() -> str:
    return get_settings().db_url


@st.cache_resource(show_spinner=False)
def _engine(url: str):
    return get_engine(url)


def engine():
    """The shared SQLAlchemy engine for the settings' database (one per URL, per server process)."""
    return _engine(db_url())


def ids(run_ids: Sequence[int]) -> tuple[int, ...]:
    """A canonical cache key for a set of runs."""
    return tuple(sorted({int(i) for i in run_ids}))


# ---- experiments and runs -------------------------------------------------------------------------------
@read
def list_experiments(url: str, tag: str | None = None) -> list[ExperimentRecord]:
    return queries.list_experiments(_engine(url), tag)


@read
def runs(url: str, experiment_id=None, status=None, family=None, tag=None, run_ids=None, limit=500,
         offset=0) -> list[RunRecord]:  # fmt: skip
    """run_queries.list_runs; ``status`` and ``run_ids`` as tuples (hashable)."""
    return run_queries.list_runs(_engine(url), experiment_id, status, family, tag, run_ids, limit, offset)


@read
def workers_now(url: str) -> list:
    """Connected workers (skipweb.services.presence), for where runs will go."""
    from skipweb.services import presence

    return presence.connected(_engine(url))


@read
def run_counts(url: str, experiment_id=None, status=None, family=None, tag=None) -> dict[str, int]:
    """status → number of runs matching the filters, counted in SQL."""
    return run_queries.count_runs(
        _engine(url), experiment_id=experiment_id, status=status, family=family, tag=tag
    )


def cached_runs(experiment_id=None, status=None, family=None, tag=None, run_ids=None, limit=500, offset=0):
    """:func:`runs` on the settings' database, from any filter values."""
    status = tuple(status) if isinstance(status, list | tuple | set) else status
    run_ids = tuple(run_ids) if run_ids is not None else None
    return runs(db_url(), experiment_id, status, family, tag, run_ids, limit, offset)


def cached_experiments(tag=None):
    return list_experiments(db_url(), tag)


@read
def experiment_runs(url: str, experiment_id: int) -> list[RunRecord]:
    return sorted(
        run_queries.list_runs(_engine(url), experiment_id=experiment_id, limit=None), key=lambda r: r.id
    )


@read
def runs_by_id(url: str, run_ids: tuple[int, ...]) -> list[RunRecord]:
    return sorted(run_queries.list_runs(_engine(url), run_ids=list(run_ids), limit=None), key=lambda r: r.id)


@read
def all_runs(url: str, limit: int = 500) -> list[RunRecord]:
    return run_queries.list_runs(_engine(url), limit=limit)


@read
def duplicates(url: str, hashes: tuple[str, ...]) -> dict[str, tuple[int, str]]:
    return run_queries.duplicate_runs(_engine(url), hashes)


@read
def experiment(url: str, experiment_id: int) -> ExperimentRecord | None:
    return queries.get_experiment(_engine(url), experiment_id)


# ---- reproduction stories: their views are computed from the database, so they are reads too -------------
@read
def story_experiment(url: str, key: str) -> ExperimentRecord | None:
    """The newest experiment tagged ``story:<key>`` (skipweb.stories.story_experiment), or None."""
    from skipweb.stories import story_experiment as newest

    return newest(_engine(url), key)


@read
def story_view(url: str, key: str, experiment_id: int | None) -> Any:
    """A story's findings and figures (a StoryView) computed from an experiment's runs (none: every finding
    inconclusive). A copy per caller: the page enlarges the figures' fonts for the projector."""
    from skipweb.stories import STORIES

    runs = experiment_runs(url, experiment_id) if experiment_id is not None else []
    return STORIES[key].build(_engine(url), runs)


# ---- metrics and probes ---------------------------------------------------------------------------------
@read
def metric_frame(url: str, run_ids: tuple[int, ...], keys: tuple[str, ...] | None = None) -> pd.DataFrame:
    return metrics.read_metrics(_engine(url), list(run_ids), keys=None if keys is None else list(keys))


@read
def metric_display(url: str, run_ids: tuple[int, ...], key: str, max_points: int = 2000) -> pd.DataFrame:
    """One key's history for display: long series averaged into at most ``max_points`` buckets in the
    database (db.metrics.read_metrics_display)."""
    return metrics.read_metrics_display(_engine(url), run_ids, key, max_points)


@read
def metric_keys(url: str, run_ids: tuple[int, ...]) -> list[str]:
    """Keys that have a latest value for any of the runs (cheap: latest_metrics, not the history)."""
    return sorted({k for d in metrics.latest(_engine(url), list(run_ids)).values() for k in d})


@read
def latest_values(url: str, run_ids: tuple[int, ...]) -> dict[int, dict[str, float]]:
    return metrics.latest(_engine(url), list(run_ids))


@read
def grad_matrices(
    url: str, run_ids: tuple[int, ...], stat: str = "grad_norm"
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    return metrics.read_grad(_engine(url), list(run_ids), stat=stat)


@read
def probe_layers(url: str, run_ids: tuple[int, ...]) -> dict[int, list[ProbeLayerRecord]]:
    return metrics.read_probe_layers(_engine(url), list(run_ids))


@read
def block_series(url: str, run_ids: tuple[int, ...]) -> dict[int, blocks.BlockSeries]:
    return blocks.read_blocks(_engine(url), list(run_ids))


# ---- loss landscapes ------------------------------------------------------------------------------------
@read
def landscape_slices(url: str, run_ids: tuple[int, ...], kind: str = "2d") -> dict[int, Any]:
    """run id → its newest stored slice of ``kind`` (db.landscapes.LandscapeRecord)."""
    return landscapes.latest_landscapes(_engine(url), list(run_ids), kind)


@read
def landscape_jobs_of(url: str, run_id: int) -> list[Any]:
    return queries.list_jobs(_engine(url), run_id)


@read
def latest_landscape_jobs(url: str, run_ids: tuple[int, ...]) -> dict[int, Any]:
    return queries.latest_jobs(_engine(url), list(run_ids))


# ---- pure computations (no expiry: keyed by all they depend on) ------------------------------------------
@st.cache_data(show_spinner="Loading the checkpoint and predicting...", max_entries=8)
def predictions(spec_json: str, checkpoint_dir: str, mtime: float, n: int = 4, run=None):
    """skipweb.training.evaluate.predict_examples for the first ``n`` test images of a run's last checkpoint,
    on the CPU. ``mtime`` keys the cache to the checkpoint file's version; ``run``: (id, status, steps_done),
    so a checkpoint older than the run is refused."""
    from skipweb.training.evaluate import predict_examples

    return predict_examples(spec_json, checkpoint_dir, get_settings().datasets_dir, n, run)


@st.cache_resource(show_spinner=False)
def _celery(data_dir: str, broker_url: str | None):
    from skipweb.services.broker import make_app
    from skipweb.settings import Settings

    return make_app(Settings(data_dir=data_dir, broker_url=broker_url))


def celery_app():
    """The Celery app for this process's settings (the embedded broker lives in the data dir)."""
    s = get_settings()
    return _celery(str(s.data_dir), s.broker_url)
