"""Charts across runs (a family's final error against depth or parameters) and the runs' summary table:
pure functions of rows and records, like :mod:`skipweb.charts` whose colours and layout they share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from skipweb.charts import _layout, color_map, log_axis
from skipweb.facts import Metric, metric_name


def _agg(rows: pd.DataFrame | Sequence[Mapping[str, Any]], by: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=[*by, "mean", "std", "n"])
    df = df[np.isfinite(df["value"].astype(float))]
    g = df.groupby(by, sort=True)["value"]
    return g.agg(mean="mean", std=lambda v: float(np.std(v, ddof=0)), n="count").reset_index()


def _family_lines(agg: pd.DataFrame, x: str, title: str, xtitle: str, ytitle: str, hover: str) -> go.Figure:
    fig = go.Figure()
    colors = color_map(agg["family"])
    for fam, sub in agg.groupby("family", sort=True):
        sub = sub.sort_values(x)
        err = {"type": "data", "array": sub["std"]}
        text = sub["label"] if "label" in sub else sub["n"]
        fig.add_scatter(x=sub[x], y=sub["mean"], error_y=err, mode="lines+markers", name=str(fam), text=text,
                        line={"color": colors[fam]}, hovertemplate=hover)  # fmt: skip
    return _layout(fig, title, xtitle, ytitle)


def final_error_vs_depth(rows, metric: str = Metric.TEST_ERROR) -> go.Figure:
    """The degradation plot: rows ``family, depth, value`` (one per run); one line per family, x = depth,
    y = mean over seeds with std error bars."""
    agg = _agg(rows, ["family", "depth"])
    hover = "depth %{x}<br>%{y:.4f} (n=%{text})"
    name = metric_name(metric, final=True)
    return _family_lines(agg, "depth", f"{name} against depth", "depth", name, hover)


def error_vs_params(rows, metric: str = Metric.TEST_ERROR) -> go.Figure:
    """Rows ``label, family, params, value``: mean over seeds per label against parameter count (log x)."""
    df = pd.DataFrame(rows)
    df = df.dropna(subset=["params"]) if not df.empty else df
    agg = _agg(df, ["family", "label", "params"])
    hover = "%{text}<br>%{x:,} params<br>%{y:.4f}"
    name = metric_name(metric, final=True)
    fig = _family_lines(agg, "params", f"{name} against parameters", "parameters (log)", name, hover)
    return log_axis(fig, [t.x for t in fig.data if t.x is not None], axis="x")


SUMMARY_COLUMNS = ["run", "label", "family", "depth", "seed", "status", "params", "FLOPs", "best test error",
                   "final test error", "final train error", "time (s)", "samples/s"]  # fmt: skip


def _seconds(a: datetime | None, b: datetime | None) -> float:
    return (b - a).total_seconds() if a is not None and b is not None else np.nan


def run_state(r: Any) -> str:
    """A run's status for a table: 'running 57%' while it trains, else its status."""
    steps, total = getattr(r, "steps_done", 0) or 0, getattr(r, "total_steps", None)
    if r.status == "running" and total:
        return f"running {100 * steps / total:.0f}%"
    return r.status


def summary_table(
    runs: Sequence[Any], latest: Mapping[int, Mapping[str, float]], history: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per run: label, family, depth, seed, status, params, FLOPs, best/final test error, final
    train error, time (s) and throughput (samples/s, mean over logged values when ``history`` is given).
    Final values are blank until a run has succeeded; a running run's status says how far it is.

    ``latest``: run id → {key: newest value}; ``history``: read_metrics frame for best-so-far values."""
    hist = history if history is not None else pd.DataFrame(columns=["run_id", "key", "value", "wall"])
    best = hist[hist["key"] == Metric.TEST_ERROR].groupby("run_id")["value"].min()
    thr = hist[hist["key"] == "samples_per_s"].groupby("run_id")["value"].mean()
    wall = hist.groupby("run_id")["wall"].max() if len(hist) else pd.Series(dtype=float)
    out = []
    for r in runs:
        lt = dict(latest.get(r.id, {}) or getattr(r, "latest", {}) or {})
        done = r.status == "succeeded"
        final = lt.get(Metric.TEST_ERROR, np.nan) if done else np.nan
        final_train = lt.get(Metric.EPOCH_TRAIN_ERROR, lt.get(Metric.TRAIN_ERROR, np.nan)) if done else np.nan
        secs = _seconds(getattr(r, "started_at", None), getattr(r, "finished_at", None))
        if not np.isfinite(secs):
            secs = float(wall.get(r.id, np.nan))
        out.append([
            r.id, r.label, r.family, r.depth, r.seed, run_state(r), r.params, r.flops,
            float(best.get(r.id, lt.get(Metric.TEST_ERROR, np.nan))), final, final_train, secs, float(thr.get(r.id, lt.get("samples_per_s", np.nan))),
        ])  # fmt: skip
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)
