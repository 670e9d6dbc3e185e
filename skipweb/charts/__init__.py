"""Plotly figures for the dashboard: pure functions of DataFrames and arrays (no Streamlit, no database).

Every number drawn is computed from the data passed in. Colours are consistent per run label within one
page: build one map with :func:`color_map` and pass it to every chart (each chart makes its own if not).
This package holds the colours and helpers every chart shares, and the gradient-flow heatmaps; the
training curves are in :mod:`skipweb.charts.curves`, the rest in the modules beside it (runs, blocks,
landscape, network).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative, sequential
from plotly.subplots import make_subplots

from skipweb.charts.network import block_of
from skipweb.facts import metric_name

PALETTE = qualitative.D3 + qualitative.Set2 + qualitative.Dark2
MAX_HEATMAP_COLS = 300
SKIP_BAR = "#ff7f0e"


# ---- helpers ----------------------------------------------------------------------------------------
def config_group(spec: Mapping[str, Any]) -> str:
    """Identity of a configuration ignoring the seed: runs with equal groups are repeats of one another."""
    rest = {k: v for k, v in spec.items() if k != "seed"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:12]


# Each family keeps one hue, so a viewer can follow it between charts and pages: plain in blues, resnet in
# oranges, densenet in greens, highway in purples, unet in reds, mlp in browns, torchvision in greys. The
# depth picks the shade (deeper is darker); a variant ("(no_skip=True)") shifts it.
FAMILY_SHADES = {fam: getattr(sequential, name)[3:] for fam, name in (
    ("plain", "Blues"), ("resnet", "Oranges"), ("densenet", "Greens"), ("highway", "Purples"), ("unet", "Reds"),
    ("mlp", "YlOrBr"), ("torchvision", "Greys"))}  # fmt: skip
_LABEL = re.compile(r"^(?P<family>[a-z]+)(?:-(?P<depth>\d+))?(?P<rest>.*?)(?: · seed \d+)?$")


def run_color(label: str, shift: int = 0) -> str:
    """The colour of a configuration (seeds share it), from its label alone: the same on every page."""
    m = _LABEL.match(label)
    if m is None or m["family"] not in FAMILY_SHADES:
        return PALETTE[(zlib.crc32(label.encode()) + shift) % len(PALETTE)]
    shades = FAMILY_SHADES[m["family"]]
    depth = int(m["depth"]) if m["depth"] else 16  # a family line of a depth plot: a middle shade
    base = min(len(shades) - 1, max(0, round(math.log2(max(depth, 1))) - 2))
    variant = zlib.crc32(m["rest"].strip().encode()) % 3 if m["rest"].strip() else 0
    return shades[(base + variant + shift) % len(shades)]


def color_map(labels: Iterable[str]) -> dict[str, str]:
    """label → colour (:func:`run_color`). Labels of one configuration (different seeds) share a colour; two
    configurations that would share one within this set get the next shade, so a chart never mixes them."""
    out: dict[str, str] = {}
    by_config: dict[str, str] = {}
    for lab in sorted(set(labels)):
        config = _LABEL.sub(lambda m: f"{m['family']}-{m['depth']}{m['rest']}", lab)
        if config not in by_config:
            taken = set(by_config.values())
            color = next((c for k in range(12) if (c := run_color(lab, k)) not in taken), run_color(lab))
            by_config[config] = color
        out[lab] = by_config[config]
    return out


def series_name(label: str, depth: int) -> str:
    """A run's line in depth plots: its label without the depth, e.g. ``resnet-56 (no_skip=True)`` →
    ``resnet (no_skip=True)``."""
    return label.replace(f"-{depth}", "", 1)


def _layout(fig: go.Figure, title: str, xtitle: str, ytitle: str, top: int = 50) -> go.Figure:
    margin = {"t": top, "l": 60, "r": 20, "b": 50}
    return fig.update_layout(title=title, xaxis_title=xtitle, yaxis_title=ytitle, margin=margin)


def for_projector(fig: go.Figure, size: int = 20, height: int = 650) -> go.Figure:
    """Every text of a chart readable from the back of a room at 1280×720: ticks, legend, axis titles,
    colour bars and subplot titles scale with ``size`` (a builder's own smaller sizes are overridden)."""
    fig.update_layout(font={"size": size}, height=height, legend={"font": {"size": size - 2}},
                      title={"font": {"size": size + 4}}, hoverlabel={"font": {"size": size - 2}})  # fmt: skip
    fig.update_xaxes(tickfont={"size": size - 2}, title_font={"size": size})
    fig.update_yaxes(tickfont={"size": size - 2}, title_font={"size": size})
    fig.update_annotations(font_size=size)
    fig.update_coloraxes(colorbar_tickfont_size=size - 2)
    for trace in fig.data:
        if "colorbar" in trace:
            trace.update(colorbar={"tickfont": {"size": size - 2}})
    return fig


def log_axis(fig: go.Figure, ys: Iterable[np.ndarray], axis: str = "y") -> go.Figure:
    """A log axis whose labels never collide or mislead: one label per decade (10⁻³, 10⁻²) when the data span
    two decades or more, else labelled 1-2-5 values written out in full (0.2, 0.5, 1, 2); Plotly's default
    labels every digit of a short range, which overlap in small panels, and its "D2" drops the magnitude."""
    pos = [v[np.isfinite(v) & (v > 0)] for v in (np.asarray(y, dtype=np.float64) for y in ys)]
    pos = [v for v in pos if v.size]
    update = fig.update_yaxes if axis == "y" else fig.update_xaxes
    if not pos:
        return update(type="log")
    lo, hi = min(v.min() for v in pos), max(v.max() for v in pos)
    if np.log10(hi / lo) >= 2:
        return update(type="log", dtick=1, exponentformat="power")
    vals = [m * 10.0**e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
            for m in (1, 2, 5) if lo / 1.5 <= m * 10.0**e <= hi * 1.5]  # fmt: skip
    return update(type="log", tickvals=vals, ticktext=[f"{v:g}" for v in vals])


# ---- gradient flow ----------------------------------------------------------------------------------
def _log10(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(m)
    out[~np.isfinite(out)] = np.nan
    return out


def _bucket_cols(steps: np.ndarray, z: np.ndarray, max_cols: int):
    """Average neighbouring probe steps (in log space) so a heatmap has at most max_cols columns."""
    n = len(steps)
    if n <= max_cols:
        return steps, z
    k = -(-n // max_cols)
    nb = -(-n // k)
    pad = np.full((z.shape[0], nb * k), np.nan)
    pad[:, :n] = z
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        zb = np.nanmean(pad.reshape(z.shape[0], nb, k), axis=2)
    return steps[::k][:nb], zb


def shared_range(zs: Iterable[np.ndarray]) -> tuple[float, float]:
    """(min, max) over the finite values of all arrays, for one colour scale across panels."""
    finite = [f for f in (np.asarray(z)[np.isfinite(z)] for z in zs) if f.size]
    if not finite:
        return 0.0, 1.0
    return float(min(f.min() for f in finite)), float(max(f.max() for f in finite))


def side_by_side(labels: Sequence[str]) -> go.Figure:
    """One row of panels, one per run, sharing the y axis (for heatmaps on one colour axis)."""
    return make_subplots(
        rows=1,
        cols=max(len(labels), 1),
        subplot_titles=list(labels) or ["no runs"],
        shared_yaxes=True,
        horizontal_spacing=0.02,
    )


def grad_heatmaps(
    grads: Mapping[str, tuple[np.ndarray, np.ndarray]],
    layers: Mapping[str, Sequence[Any]] | None = None,
    *,
    max_cols: int = MAX_HEATMAP_COLS,
    stat: str = "grad_norm",
) -> go.Figure:
    """Side-by-side heatmaps, probe layer (depth) × step, colour log10 of the statistic on ONE scale.

    ``grads``: label → (steps[n], matrix[n × layers]); ``layers``: label → probe layer records (idx, name,
    skip). Skip-bridged layers get a ▸ marker on the left edge whose hover names the layer."""
    labels = list(grads)
    logs = {lab: _log10(grads[lab][1]) for lab in labels}
    zmin, zmax = shared_range(logs.values())
    fig = side_by_side(labels)
    for i, lab in enumerate(labels, start=1):
        steps, _ = grads[lab]
        z = logs[lab].T  # layers × steps
        if z.size == 0:
            continue
        xs, zb = _bucket_cols(np.asarray(steps), z, max_cols)
        fig.add_trace(
            go.Heatmap(
                x=xs,
                y=np.arange(z.shape[0]),
                z=zb,
                coloraxis="coloraxis",
                name=lab,
                hovertemplate=f"{lab}<br>step %{{x}}<br>layer %{{y}}<br>log10 {metric_name(stat)} %{{z:.2f}}"
                "<extra></extra>",
            ),
            row=1,
            col=i,
        )
        spans = skip_spans(list((layers or {}).get(lab, [])))
        if spans:  # a bar beside the heatmap over each skip-bridged block
            dx = float(xs[1] - xs[0]) if len(xs) > 1 else 1.0
            x = float(xs[0]) - 0.9 * dx
            ys: list[float | None] = []
            for first, last, _ in spans:
                ys += [first - 0.4, last + 0.4, None]
            fig.add_trace(
                go.Scatter(x=[x if y is not None else None for y in ys], y=ys, mode="lines",
                           line={"color": SKIP_BAR, "width": 5}, hoverinfo="text", showlegend=False,
                           hovertext=[f"{spans[k // 3][2]}: skip-bridged" for k in range(len(ys))]),
                row=1, col=i,
            )  # fmt: skip
        fig.update_xaxes(title_text="step", row=1, col=i)
    fig.update_yaxes(title_text="probe layer (input → output)", row=1, col=1)
    bar = {"title": {"text": f"log10 {metric_name(stat)}"}}
    fig.update_layout(coloraxis={"colorscale": "Viridis", "cmin": zmin, "cmax": zmax, "colorbar": bar})
    title = f"{metric_name(stat)} per layer over training (orange bar = a skip-bridged block)"
    return fig.update_layout(title=title, margin={"t": 70, "l": 60, "r": 20, "b": 50})


def skip_spans(layers: Sequence[Any]) -> list[tuple[int, int, str]]:
    """(first idx, last idx, block) of each run of consecutive skip-bridged probe layers of one block."""
    spans: list[tuple[int, int, str]] = []
    for r in layers:
        if not getattr(r, "skip", False):
            continue
        block = block_of(r.name)
        if spans and spans[-1][2] == block and spans[-1][1] == r.idx - 1:
            spans[-1] = (spans[-1][0], r.idx, block)
        else:
            spans.append((r.idx, r.idx, block))
    return spans


def nearest_index(steps: np.ndarray, step: int) -> int:
    return int(np.abs(np.asarray(steps, dtype=np.int64) - int(step)).argmin())


def grad_vs_depth(
    grads: Mapping[str, tuple[np.ndarray, np.ndarray]],
    step: int,
    *,
    colors: Mapping[str, str] | None = None,
    stat: str = "grad_norm",
) -> go.Figure:
    """The statistic against layer index at the probe step nearest to ``step``, one line per run, log y."""
    colors = dict(colors or color_map(grads))
    fig = go.Figure()
    for lab, (steps, m) in grads.items():
        if len(steps) == 0:
            continue
        i = nearest_index(steps, step)
        fig.add_scatter(
            x=np.arange(m.shape[1]),
            y=np.asarray(m[i], dtype=np.float64),
            mode="lines+markers",
            name=f"{lab} (step {int(steps[i])})",
            line={"color": colors.get(lab, PALETTE[0])},
        )
    name = metric_name(stat)
    _layout(fig, f"{name} per layer at step ≈ {int(step)}", "probe layer (input → output)", name)
    return log_axis(fig, [t.y for t in fig.data])
