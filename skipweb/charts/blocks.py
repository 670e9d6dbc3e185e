"""Plotly figures for the per-block probes (skipweb.training.probes.BlockProbe): pure functions of arrays.

The skip/branch ratio is drawn as log10(skip / branch) on a diverging scale centred at 0: red blocks
get more of their input gradient through the skip path than through their own layers, blue ones less.
Every heatmap row is a block (input → output), every column a probe step; runs side by side share one
colour scale so a colour means the same number in every panel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from skipweb.charts import (
    MAX_HEATMAP_COLS,
    PALETTE,
    _bucket_cols,
    _layout,
    color_map,
    log_axis,
    nearest_index,
    shared_range,
    side_by_side,
)


@dataclass(frozen=True)
class BlockStat:
    title: str  # what the colour means
    log: bool  # colour is log10 of the value
    colorscale: str
    fixed: tuple[float, float] | None = None  # fixed colour range (fractions), else shared data range
    diverging: bool = False  # symmetric range around 0


VIEWS: dict[str, BlockStat] = {
    "ratio": BlockStat("log10 skip/branch gradient", True, "RdBu_r", diverging=True),
    "skip_grad": BlockStat("log10 ‖dL/dx‖ via skip", True, "Viridis"),
    "branch_grad": BlockStat("log10 ‖dL/dx‖ via branch", True, "Viridis"),
    "act_mean": BlockStat("activation mean", False, "Viridis"),
    "act_std": BlockStat("log10 activation std", True, "Viridis"),
    "act_dead": BlockStat("dead-unit fraction", False, "Reds", fixed=(0.0, 1.0)),
    "gate": BlockStat("highway gate T (1 = transform)", False, "Cividis", fixed=(0.0, 1.0)),
}
NOT_DEFINED = {
    "ratio": "no skip path",
    "skip_grad": "no skip path",
    "gate": "no highway gate",
}
LABELS = {
    "ratio": "skip/branch gradient ratio",
    "skip_grad": "gradient via skip",
    "branch_grad": "gradient via branch",
    "act_mean": "activation mean",
    "act_std": "activation std",
    "act_dead": "dead ReLU fraction",
    "gate": "highway gate T",
}


def values(series: Any, view: str) -> np.ndarray:
    """steps × blocks values of ``view`` for a db.blocks.BlockSeries, transformed for colour."""
    m = series.ratio() if view == "ratio" else series.stats[view]
    m = np.asarray(m, dtype=np.float64)
    if VIEWS[view].log:
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.log10(m)
    m[~np.isfinite(m)] = np.nan
    return m


def _range(zs: Sequence[np.ndarray], stat: BlockStat) -> tuple[float, float]:
    if stat.fixed:
        return stat.fixed
    lo, hi = shared_range(zs)
    if stat.diverging:
        m = max(abs(lo), abs(hi), 1e-3)
        return (-m, m)
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def block_heatmaps(series: Mapping[str, Any], view: str, *, max_cols: int = MAX_HEATMAP_COLS) -> go.Figure:
    """Side-by-side heatmaps, block × step, of one view (see VIEWS) on ONE colour scale.

    ``series``: label → db.blocks.BlockSeries. All-NaN panels (no skip path in a plain net, no gate
    outside highway nets) say so in their hover instead of drawing invented values."""
    stat = VIEWS[view]
    labels = list(series)
    zs = {lab: values(series[lab], view) for lab in labels}
    zmin, zmax = _range(list(zs.values()), stat)
    fig = side_by_side(labels)
    for i, lab in enumerate(labels, start=1):
        s, z = series[lab], zs[lab].T  # blocks × steps
        if z.size == 0 or not np.isfinite(z).any():
            # e.g. the skip/branch ratio of a net without skips: a labelled empty panel, not empty axes
            # centred on this panel in paper coordinates: a panel without traces has no axes to refer to
            lo, hi = fig.layout["xaxis" if i == 1 else f"xaxis{i}"].domain
            # three short lines: side by side panels are narrow, and one long line ran into the next panel's
            fig.add_annotation(text=f"not defined<br>for this net<br>({NOT_DEFINED.get(view, 'no data')})",
                               showarrow=False, xref="paper", yref="paper", x=(lo + hi) / 2, y=0.5)  # fmt: skip
            fig.update_xaxes(visible=False, row=1, col=i)
            continue
        xs, zb = _bucket_cols(np.asarray(s.steps), z, max_cols)
        names = [f"{b.name} ({b.kind})" for b in s.layers]
        fig.add_trace(
            go.Heatmap(
                x=xs,
                y=np.arange(z.shape[0]),
                z=zb,
                coloraxis="coloraxis",
                name=lab,
                customdata=np.array([[n] * len(xs) for n in names], dtype=object),
                hovertemplate=f"{lab}<br>step %{{x}}<br>block %{{y}}: %{{customdata}}<br>{stat.title} %{{z:.3f}}"
                "<extra></extra>",
            ),
            row=1,
            col=i,
        )
        fig.update_xaxes(title_text="step", row=1, col=i)
    fig.update_yaxes(title_text="block (input → output)", row=1, col=1)
    fig.update_layout(
        coloraxis={
            "colorscale": stat.colorscale,
            "cmin": zmin,
            "cmax": zmax,
            "colorbar": {"title": stat.title},
        },
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
    )
    return fig


def block_profile(
    series: Mapping[str, Any], view: str, step: int | None = None, *, colors: Mapping[str, str] | None = None
) -> go.Figure:
    """The view against block index at the probe step nearest ``step`` (default: each run's last), one
    line per run; the ratio view draws y = 1 (equal gradient through skip and branch) for reference."""
    colors = dict(colors or color_map(series))
    stat = VIEWS[view]
    fig = go.Figure()
    for lab, s in series.items():
        if not s:
            continue
        i = len(s.steps) - 1 if step is None else nearest_index(s.steps, step)
        raw = s.ratio()[i] if view == "ratio" else s.stats[view][i]
        if not np.isfinite(raw).any():  # e.g. the ratio of a no-skip net: nothing to draw
            continue
        fig.add_scatter(
            x=np.arange(len(raw)),
            y=np.asarray(raw, dtype=np.float64),
            mode="lines+markers",
            name=f"{lab} (step {int(s.steps[i])})",
            line={"color": colors.get(lab, PALETTE[0])},
            text=[b.name for b in s.layers],
            hovertemplate="%{text}: %{y:.3g}<extra>" + lab + "</extra>",
        )
    when = "last probe step" if step is None else f"step ≈ {int(step)}"
    _layout(fig, f"{LABELS[view]} per block at {when}", "block (input → output)", LABELS[view])
    if not fig.data:  # only nets without skip paths (or gates): say so instead of drawing empty axes
        fig.add_annotation(text=f"{LABELS[view]}: not defined for these nets ({NOT_DEFINED.get(view, 'no data')})",
                           showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)  # fmt: skip
        return fig.update_xaxes(visible=False).update_yaxes(visible=False)
    if stat.log:
        log_axis(fig, [np.asarray(t.y, dtype=np.float64) for t in fig.data])
    if view == "ratio":
        fig.add_hline(y=1.0, line={"dash": "dot", "color": "gray"})
    return fig
