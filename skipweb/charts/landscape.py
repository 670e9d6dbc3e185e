"""Plotly figures of loss landscapes (skipweb.training.landscape): contours and 3-D surfaces of several
runs side by side on ONE colour scale, and the initial→final interpolation lines. Pure functions of the
stored values.

Losses are drawn as log10 by default: a filter-normalized slice spans orders of magnitude (the loss at
±1 can be 1000× the loss at the centre). Missing (non-finite) losses are gaps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from skipweb.charts import shared_range

COLORSCALE = "Viridis"


def _grid(item: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    get = item.get if isinstance(item, Mapping) else lambda k: getattr(item, k)
    z = np.array([[np.nan if v is None else v for v in row] for row in get("loss")], dtype=float)
    return np.asarray(get("x"), dtype=float), np.asarray(get("y"), dtype=float), z


def _scaled(z: np.ndarray, log: bool) -> np.ndarray:
    if not log:
        return z
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(z > 0, np.log10(z), np.nan)


def _shared_range(zs: Sequence[np.ndarray]) -> tuple[float, float]:
    lo, hi = shared_range(zs)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def landscape_figures(
    landscapes: Mapping[str, Any], *, log: bool = True, height: int = 420
) -> tuple[go.Figure, go.Figure]:
    """``(contours, surfaces)`` for ``{label: landscape}``, one panel per run, one shared colour scale.

    A landscape is anything with ``x``, ``y`` and ``loss`` rows (``loss[i][j]`` at ``(x[j], y[i])``): a
    ``db.landscapes.LandscapeRecord``, a ``skipweb.training.landscape.Landscape`` or its ``as_json()`` dict.
    """
    labels = list(landscapes)
    grids = [_grid(landscapes[k]) for k in labels]
    zs = [_scaled(z, log) for _, _, z in grids]
    zmin, zmax = _shared_range(zs)
    title = "log10 loss" if log else "loss"
    n = max(1, len(labels))

    contours = make_subplots(
        rows=1, cols=n, subplot_titles=labels, shared_yaxes=True, horizontal_spacing=0.04
    )
    for i, ((x, y, _), z) in enumerate(zip(grids, zs, strict=True), start=1):
        contours.add_trace(
            go.Contour(
                x=x,
                y=y,
                z=z,
                zmin=zmin,
                zmax=zmax,
                colorscale=COLORSCALE,
                coloraxis="coloraxis",
                contours={"showlabels": True},
                name=labels[i - 1],
                hovertemplate="δ=%{x:.2f}, η=%{y:.2f}<br>" + title + " %{z:.3f}<extra></extra>",
            ),
            row=1,
            col=i,
        )
        contours.add_trace(
            go.Scatter(
                x=[0],
                y=[0],
                mode="markers",
                marker={"symbol": "x", "color": "white", "size": 9},
                showlegend=False,
                hoverinfo="skip",
            ),
            row=1,
            col=i,
        )
        contours.update_xaxes(title_text="direction 1", row=1, col=i)
    contours.update_yaxes(title_text="direction 2", row=1, col=1)
    contours.update_layout(
        coloraxis={"colorscale": COLORSCALE, "cmin": zmin, "cmax": zmax, "colorbar": {"title": title}},
        height=height,
        margin={"t": 50, "l": 50, "r": 20, "b": 40},
        title="loss landscape (filter-normalized)",
    )

    surfaces = make_subplots(
        rows=1, cols=n, subplot_titles=labels, specs=[[{"type": "surface"}] * n], horizontal_spacing=0.02
    )
    for i, ((x, y, _), z) in enumerate(zip(grids, zs, strict=True), start=1):
        surfaces.add_trace(
            go.Surface(x=x, y=y, z=z, cmin=zmin, cmax=zmax, coloraxis="coloraxis", name=labels[i - 1]),
            row=1,
            col=i,
        )
    # a flatter box seen from further away: with the default camera the highest corners left the scene at the
    # top; the z range has headroom for the same reason
    scene = {
        "xaxis_title": "direction 1",
        "yaxis_title": "direction 2",
        "zaxis_title": title,
        "zaxis": {"range": [zmin, zmax + 0.05 * (zmax - zmin)]},
        "aspectmode": "manual",
        "aspectratio": {"x": 1, "y": 1, "z": 0.6},
        "camera": {"eye": {"x": 1.9, "y": 1.9, "z": 1.0}},
    }
    surfaces.update_layout(
        coloraxis={"colorscale": COLORSCALE, "cmin": zmin, "cmax": zmax, "colorbar": {"title": title}},
        height=height + 80,
        margin={"t": 50, "l": 0, "r": 0, "b": 0},
        **{("scene" if i == 1 else f"scene{i}"): scene for i in range(1, n + 1)},
    )
    return contours, surfaces


def interp_figure(
    lines: Mapping[str, Sequence[tuple[float, float | None]]], *, log: bool = True
) -> go.Figure:
    """Loss along ``(1-α)·initial + α·final`` for ``{label: [(alpha, loss), ...]}``."""
    fig = go.Figure()
    for label, pts in lines.items():
        fig.add_trace(
            go.Scatter(
                x=[a for a, _ in pts],
                y=[np.nan if v is None else v for _, v in pts],
                mode="lines+markers",
                name=label,
            )
        )
    for a in (0, 1):
        fig.add_vline(x=a, line_dash="dot", line_color="grey")
    fig.update_layout(
        title="initial → final weights",
        xaxis_title="α (0 initial, 1 final)",
        yaxis_title="loss",
        yaxis_type="log" if log else "linear",
        height=360,
        margin={"t": 50, "l": 50, "r": 20, "b": 40},
    )
    return fig
