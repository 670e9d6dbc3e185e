"""What Compare and Present show, independent of either page: the selection a URL asks for (validated, with
one-line messages), run labels, and the figures and rows both pages draw from skipweb.ui.data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from skipweb import charts
from skipweb.charts import curves as charts_curves
from skipweb.charts import runs as charts_runs
from skipweb.facts import MAX_ID, Metric
from skipweb.ui import data

DEFAULT_METRIC = Metric.TEST_ERROR
FINAL_METRICS = {"test error": Metric.TEST_ERROR, "train error": Metric.EPOCH_TRAIN_ERROR}


# ---- query parameters ----------------------------------------------------------------------------------
@dataclass
class Selection:
    """What the URL asked for, validated: the runs to show and the view options, plus messages."""

    runs: list[Any] = field(default_factory=list)
    experiment_id: int | None = None
    x: str = "step"
    smooth: float = 0.0
    log: bool = False
    fold: bool = False
    metric: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_int_list(text: str) -> list[int]:
    """'3,4, 5' → [3, 4, 5]; raises ValueError naming the first item that is not a run id."""
    out = []
    for item in (t.strip() for t in text.split(",")):
        if item:
            try:
                out.append(int(item))
            except ValueError:
                raise ValueError(f"{item!r} is not an integer run id") from None
            if not 1 <= out[-1] <= MAX_ID:  # cannot exist; a query with it would overflow the integer column
                raise ValueError(f"{item} is not a run id (ids run from 1 to {MAX_ID})")
    return out


def _bool(text: str) -> bool | None:
    return {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}.get(text.lower())


def resolve(url: str, params: Mapping[str, str]) -> Selection:
    """Validate the query parameters against the database; never raises for bad user input."""
    sel = Selection()
    exp, runs = params.get("exp"), params.get("runs")
    if exp is not None and runs is not None:
        sel.warnings.append("Both `exp` and `runs` are in the link; showing the runs.")
    if runs is not None:
        try:
            wanted = parse_int_list(runs)
        except ValueError as e:
            sel.errors.append(f"Bad `runs` parameter: {e}. Use comma-separated run ids, e.g. `runs=3,4`.")
            wanted = []
        if wanted:
            sel.runs = data.runs_by_id(url, data.ids(wanted))
            missing = sorted(set(wanted) - {r.id for r in sel.runs})
            if missing:
                sel.warnings.append(f"Unknown run id(s) {', '.join(map(str, missing))}: not shown.")
    elif exp is not None:
        try:
            sel.experiment_id = int(exp)
            if not 1 <= sel.experiment_id <= MAX_ID:
                raise ValueError
        except ValueError:
            sel.experiment_id = None
            sel.errors.append(f"Bad `exp` parameter {exp!r}: it must be an experiment id, 1 to {MAX_ID}.")
        if sel.experiment_id is not None:
            if sel.experiment_id not in {e.id for e in data.list_experiments(url)}:
                sel.warnings.append(f"Experiment {sel.experiment_id} does not exist (deleted?).")
                sel.experiment_id = None
            else:
                sel.runs = data.experiment_runs(url, sel.experiment_id)
    if (x := params.get("x")) is not None:
        if x in charts_curves.X_AXES:
            sel.x = x
        else:
            sel.warnings.append(
                f"Unknown x-axis {x!r}; choose one of {', '.join(charts_curves.X_AXES)}. Using step."
            )
    if (sm := params.get("smooth")) is not None:
        try:
            sel.smooth = float(sm)
            if not 0 <= sel.smooth <= 0.99:
                raise ValueError
        except ValueError:
            sel.smooth = 0.0
            sel.warnings.append(f"Bad `smooth` {sm!r}: a number from 0 to 0.99. Using 0.")
    for name in ("log", "fold"):
        if (v := params.get(name)) is not None:
            b = _bool(v)
            if b is None:
                sel.warnings.append(f"Bad `{name}` {v!r}: use 1 or 0.")
            setattr(sel, name, bool(b))
    sel.metric = params.get("metric")
    return sel


# ---- building the figures (no widgets: also used by Present and the benchmark) -----------------------
def display_labels(runs: Sequence[Any]) -> dict[int, str]:
    """run id → a unique, readable name: the label, plus the seed where labels repeat."""
    counts = pd.Series([r.label for r in runs]).value_counts()
    return {r.id: r.label if counts[r.label] == 1 else f"{r.label} · seed {r.seed}" for r in runs}


@data.shared
def curve_figure(
    url: str, runs: Sequence[Any], key: str, x: str, smooth: float, log: bool, fold: bool
) -> go.Figure:
    rids = data.ids([r.id for r in runs])
    df = data.metric_display(url, rids, key, charts_curves.MAX_POINTS)
    labels = {r.id: r.label for r in runs} if fold else display_labels(runs)
    return charts_curves.curves(
        df,
        key,
        labels,
        x=x,
        smoothing=smooth,
        log_y=log,
        fold=fold,
        groups={r.id: charts.config_group(r.spec) for r in runs},
        batch_sizes={r.id: int(r.spec.get("batch_size", 1)) for r in runs},
        colors=charts.color_map(labels.values()),
    )


@data.shared
def grad_data(url: str, runs: Sequence[Any]) -> tuple[dict[str, tuple], dict[str, list]]:
    rids = data.ids([r.id for r in runs])
    mats, layers = data.grad_matrices(url, rids), data.probe_layers(url, rids)
    names = display_labels(runs)
    grads = {names[r.id]: mats[r.id] for r in runs if len(mats.get(r.id, ((),))[0])}
    return grads, {names[r.id]: layers.get(r.id, []) for r in runs}


@data.shared
def heatmaps_figure(url: str, runs: Sequence[Any], picked: tuple[str, ...] | None = None) -> go.Figure:
    """Gradient-norm heatmaps of the ``picked`` runs (display labels; all when None)."""
    grads, layers = grad_data(url, runs)
    fig = charts.grad_heatmaps({n: g for n, g in grads.items() if picked is None or n in picked}, layers)
    return fig.update_layout(height=450)


@data.shared
def depth_figure(url: str, runs: Sequence[Any], step: int | None = None) -> go.Figure:
    """Gradient norm against depth at the probe ``step`` (the last one when None)."""
    grads, _ = grad_data(url, runs)
    if step is None:
        step = max(int(s[-1]) for s, _ in grads.values())
    return charts.grad_vs_depth(grads, step, colors=charts.color_map(grads))


@data.shared
def final_figures(url: str, runs: Sequence[Any], metric: str) -> tuple[go.Figure, go.Figure] | None:
    """(final ``metric`` against depth, against parameters) over the runs that succeeded; None if none has."""
    rows = final_rows(runs, data.latest_values(url, data.ids([r.id for r in runs])), metric)
    if not rows:
        return None
    return charts_runs.final_error_vs_depth(rows, metric), charts_runs.error_vs_params(rows, metric)


def unfinished(runs: Sequence[Any]) -> list[str]:
    """'plain-56 (running 57%)' for each run that has not succeeded: charts of final values leave them out."""
    return [f"{r.label} ({charts_runs.run_state(r)})" for r in runs if r.status != "succeeded"]


def final_rows(runs: Sequence[Any], latest: Mapping[int, Mapping[str, float]], metric: str) -> list[dict]:
    """Final values of the runs that succeeded; a running (or failed) run's newest value is not final."""
    rows = []
    for r in runs:
        if r.status != "succeeded":
            continue
        value = latest.get(r.id, {}).get(metric)
        if value is not None:
            fam = charts.series_name(r.label, r.depth)
            rows.append(
                {"family": fam, "depth": r.depth, "label": r.label, "params": r.params, "value": value}
            )
    return rows


def table(url: str, runs: Sequence[Any]) -> pd.DataFrame:
    rids = data.ids([r.id for r in runs])
    return charts_runs.summary_table(
        runs, data.latest_values(url, rids), data.metric_frame(url, rids, (Metric.TEST_ERROR,))
    )


# ---- the page -------------------------------------------------------------------------------------------
