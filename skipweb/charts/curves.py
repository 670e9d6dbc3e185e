"""Training curves: one metric against step, epoch, wall time or samples, one line per run or per seed group.

Seeds of one configuration share its colour (:func:`skipweb.charts.color_map`) and differ in dash; folded
groups draw mean ± std over seeds. Long series are downsampled for display only (:func:`downsample`);
statistics use the full data, and a figure with many points is drawn with WebGL (:func:`webgl`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from skipweb.charts import PALETTE, _layout, color_map, log_axis
from skipweb.facts import metric_name

X_AXES = ("step", "epoch", "wall", "samples")
X_TITLES = {"step": "optimizer step", "epoch": "epoch", "wall": "wall time (s)", "samples": "samples seen"}
MAX_POINTS = 2000
WEBGL_POINTS = 5000  # past this many points a figure's lines are drawn with WebGL


def _faint(color: str, alpha: float) -> str:
    c = color.lstrip("#")
    if len(c) == 6:
        r, g, b = (int(c[i : i + 2], 16) for i in (0, 2, 4))
        return f"rgba({r},{g},{b},{alpha})"
    if color.startswith("rgb("):
        return f"rgba({color[4:-1]},{alpha})"
    return color


DASHES = ("solid", "dash", "dot", "dashdot", "longdash")


def seed_dashes(labels: Iterable[str]) -> dict[str, str]:
    """Seeds of one configuration share its colour (:func:`color_map`); each gets its own dash."""
    out: dict[str, str] = {}
    count: dict[str, int] = {}
    for lab in sorted(set(labels)):
        config = lab.split(" · seed ")[0]
        out[lab] = DASHES[count.get(config, 0) % len(DASHES)]
        count[config] = count.get(config, 0) + 1
    return out


def downsample(x: Sequence | np.ndarray, y: Sequence | np.ndarray, max_points: int = MAX_POINTS):
    """Min-max bucket downsampling for display: (x, y, kept indices), at most ``max_points`` points.

    Keeps the first and last point and, per bucket, the minimum and maximum (so spikes stay visible).
    NaNs are kept only where a bucket has nothing else."""
    x, y = np.asarray(x), np.asarray(y, dtype=np.float64)
    n = len(y)
    if n <= max_points or max_points < 4:
        idx = np.arange(n)
        return x, y, idx
    nb = (max_points - 2) // 2
    k = -(-n // nb)  # ceil
    pad = np.full(nb * k, np.nan)
    pad[:n] = y
    grid = pad.reshape(nb, k)
    finite = np.isfinite(grid)
    lo = np.where(finite, grid, np.inf).argmin(axis=1)
    hi = np.where(finite, grid, -np.inf).argmax(axis=1)
    base = np.arange(nb) * k
    idx = np.unique(np.concatenate([[0, n - 1], base + lo, base + hi]))
    idx = idx[idx < n]
    return x[idx], y[idx], idx


def ema(y: np.ndarray, smoothing: float) -> np.ndarray:
    """Exponential moving average (weight ``smoothing`` on the past, NaNs skipped); 0 returns y."""
    if smoothing <= 0:
        return np.asarray(y, dtype=np.float64)
    s = pd.Series(np.asarray(y, dtype=np.float64)).ewm(
        alpha=1 - min(smoothing, 0.999), adjust=False, ignore_na=True
    )
    return s.mean().to_numpy()


def fold_seeds(df: pd.DataFrame, x: str = "step") -> pd.DataFrame:
    """Runs of one group aligned on step: columns ``step, x, mean, std, n`` (std over runs, ddof=0)."""
    piv = df.pivot_table(index="step", columns="run_id", values="value", aggfunc="last", dropna=False)
    if x == "step":
        xs = pd.Series(piv.index.to_numpy(dtype=np.float64), index=piv.index)
    else:
        xs = df.pivot_table(index="step", columns="run_id", values=x, aggfunc="last").mean(axis=1)
    vals = piv.to_numpy(dtype=np.float64)
    n = np.isfinite(vals).sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(vals, axis=1)
        std = np.nanstd(vals, axis=1)
    return pd.DataFrame(
        {
            "step": piv.index.to_numpy(),
            "x": xs.reindex(piv.index).to_numpy(),
            "mean": mean,
            "std": std,
            "n": n,
        }
    )


def curves(
    df: pd.DataFrame,
    key: str,
    labels: Mapping[int, str],
    *,
    x: str = "step",
    smoothing: float = 0.0,
    log_y: bool = False,
    fold: bool = False,
    groups: Mapping[int, str] | None = None,
    batch_sizes: Mapping[int, int] | None = None,
    colors: Mapping[str, str] | None = None,
    max_points: int = MAX_POINTS,
) -> go.Figure:
    """One metric against step/epoch/wall/samples, one line per run (or per seed group when ``fold``).

    ``df``: read_metrics' long frame. ``labels``: run id → label; ``groups``: run id → config_group;
    ``batch_sizes``: run id → batch size (x="samples" is step × batch size). With ``smoothing`` the EMA
    is drawn bold and the raw curve faint behind it; folded groups draw mean ± std (over seeds) bands."""
    if x not in X_AXES:
        raise ValueError(f"x must be one of {', '.join(X_AXES)}, not {x!r}")
    colors = dict(colors or color_map(labels.values()))
    dashes = seed_dashes(labels.values())
    d = df[df["key"] == key].copy()
    d = d[d["run_id"].isin(list(labels))]
    if x == "samples":
        d["samples"] = d["step"] * d["run_id"].map(dict(batch_sizes or {})).fillna(1).to_numpy()
    fig = go.Figure()
    if fold:
        grp = d["run_id"].map(dict(groups or {rid: str(rid) for rid in labels}))
        series = [(sub, sorted(set(sub["run_id"]))) for _, sub in d.groupby(grp, sort=False)]
    else:
        series = [(sub, [rid]) for rid, sub in d.groupby("run_id", sort=True)]
    for sub, rids in series:
        label = labels[rids[0]]
        color = colors.get(label, PALETTE[0])
        if len(rids) > 1:
            f = fold_seeds(sub, x)
            xs, ys, std = f["x"].to_numpy(), f["mean"].to_numpy(), f["std"].to_numpy()
            name = f"{label} ({len(rids)} seeds)"
        else:
            sub = sub.sort_values("step")
            xs, ys, std, name = sub[x].to_numpy(), sub["value"].to_numpy(), None, label
        sm = ema(ys, smoothing)
        dx, dy, idx = downsample(xs, sm, max_points)
        quiet = {"mode": "lines", "showlegend": False, "hoverinfo": "skip", "legendgroup": name}
        if std is not None:  # mean ± std band over seeds
            fig.add_scatter(x=dx, y=sm[idx] + std[idx], line={"width": 0}, **quiet)
            fig.add_scatter(x=dx, y=sm[idx] - std[idx], line={"width": 0}, fill="tonexty",
                            fillcolor=_faint(color, 0.2), **quiet)  # fmt: skip
        if smoothing > 0:  # the raw curve, faint, behind the smoothed one
            rx, ry, _ = downsample(xs, ys, max_points)
            fig.add_scatter(x=rx, y=ry, line={"color": _faint(color, 0.25), "width": 1}, **quiet)
        fig.add_scatter(
            x=dx, y=dy, mode="lines+markers" if len(dx) <= 30 else "lines", name=name, line={"color": color, "width": 2, "dash": dashes.get(label, "solid")},
            legendgroup=name
        )
    name = metric_name(key)
    _layout(fig, name, X_TITLES[x], name).update_layout(hovermode="x unified")
    if log_y:
        log_axis(fig, [t.y for t in fig.data if t.y is not None])
    return webgl(fig)


def webgl(fig: go.Figure, max_svg_points: int = WEBGL_POINTS) -> go.Figure:
    """The same figure with WebGL line traces when it holds more than ``max_svg_points`` points: a browser
    draws tens of thousands of SVG points in seconds, WebGL in milliseconds (bench/page_speed.py)."""
    if sum(len(t.x) for t in fig.data if t.type == "scatter" and t.x is not None) <= max_svg_points:
        return fig
    traces = [go.Scattergl({k: v for k, v in t.to_plotly_json().items() if k != "type"}) if t.type == "scatter"
              else t for t in fig.data]  # fmt: skip
    return go.Figure(traces, layout=fig.layout)
