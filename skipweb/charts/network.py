"""The network map of Run detail: every probe layer as a labelled box, in stage columns, with an arc for each
skip connection — readable for a 56- or 110-layer net (a long stage wraps into the next column).

Pure functions of the run's probe layers (name, skip flag, parameters): the names say the stage
(``layer2``, ``dense1``, ``downs.0``) and the block (``layer2.0``); a ``shortcut``/``downsample`` layer is a
projection shortcut. U-Nets are drawn as a U: each encoder level one step lower, each decoder stage back up,
with a long skip from every encoder level to the decoder stage that joins it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

MAX_ROWS = 24  # rows per column; a longer stage continues in the next column
ROW_PX, COL_PX = 24, 190
BOX_W = 0.72  # of a column's width; arcs bulge into the rest
FONT = 12
SKIP, PROJECTION, LONG, PLAIN, BRIDGED = "#d62728", "#9467bd", "#d62728", "#e8e8e8", "#fdd0a2"
PREFIXES = ("net.", "features.")
CIFAR_STAGED = ("resnet", "highway")  # the first block of every stage but the first halves the resolution


def _short(name: str) -> str:
    for p in PREFIXES:
        if name.startswith(p):
            name = name[len(p):]  # fmt: skip
    return name


def stage_of(name: str) -> str:
    """``layer2.0.conv1`` → ``layer2``; a U-Net level keeps its index (``downs.1.1.0`` → ``downs.1``)."""
    parts = _short(name).split(".")
    if parts[0] in ("downs", "ups") and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def block_of(name: str) -> str:
    """``layer2.0.shortcut.0`` → ``layer2.0``: the first two parts of a layer inside a block, else the stage."""
    parts = _short(name).split(".")
    return ".".join(parts[:2]) if len(parts) >= 3 else stage_of(name)


def _label(name: str, stage: str) -> str:
    """The name inside its stage (``layer2.0.conv1`` → ``0.conv1``); whole when that is only an index."""
    rest = _short(name)[len(stage) + 1:]  # fmt: skip
    return rest if rest and not rest.replace(".", "").isdigit() else _short(name)


def is_projection(name: str) -> bool:
    return any(part in ("shortcut", "downsample") for part in _short(name).split("."))


@dataclass
class Box:
    idx: int
    name: str
    label: str
    col: int
    row: float
    skip: bool
    params: int


@dataclass
class Arc:
    col: int
    top: float
    bottom: float
    projection: str  # "" | "1×1 conv" | "zero-pad"


def _is_unet(names: Sequence[str]) -> bool:
    return any(n.startswith("downs.") for n in names) and any(n.startswith("ups.") for n in names)


def _columns(layers: Sequence[Any]) -> tuple[list[Box], list[tuple[int, float, str]]]:
    """Boxes and stage headers (col, row, text): stages fill columns in order; a stage of more than two layers
    starts a new column unless the column holds only small ones (stem, transitions); a column wraps at
    MAX_ROWS."""
    boxes: list[Box] = []
    headers: list[tuple[int, float, str]] = []
    col, row, has_big = 0, 0, False
    i = 0
    while i < len(layers):
        stage = stage_of(layers[i].name)
        members = []
        while i < len(layers) and stage_of(layers[i].name) == stage:
            members.append(layers[i])
            i += 1
        big = len(members) > 2
        if row and ((big and has_big) or row + 1 + min(len(members), MAX_ROWS - 1) > MAX_ROWS):
            col, row, has_big = col + 1, 0, False
        headers.append((col, row, stage))
        row += 1
        for p in members:
            if row >= MAX_ROWS:
                col, row = col + 1, 0
                headers.append((col, row, f"{stage} (cont.)"))
                row += 1
            boxes.append(Box(p.idx, p.name, _label(p.name, stage), col, row, bool(p.skip), int(p.params)))
            row += 1
        has_big = has_big or big
    return boxes, headers


def _unet(layers: Sequence[Any]) -> tuple[list[Box], list[tuple[int, float, str]]]:
    """One column per stage, each encoder level 3 rows lower than the one above it: the U of Ronneberger et al."""
    stages: list[str] = []
    for p in layers:
        if stage_of(p.name) not in stages:
            stages.append(stage_of(p.name))
    depth = sum(s.startswith("downs.") for s in stages)

    def level(stage: str) -> int:
        if stage.startswith("downs."):
            return int(stage.split(".")[1]) + 1
        if stage.startswith("ups."):
            return depth - 1 - int(stage.split(".")[1])
        return 0

    boxes: list[Box] = []
    headers: list[tuple[int, float, str]] = []
    for col, stage in enumerate(stages):
        top = 4 * level(stage)
        headers.append((col, top, stage))
        members = [p for p in layers if stage_of(p.name) == stage]
        for k, p in enumerate(members):
            boxes.append(Box(p.idx, p.name, _label(p.name, stage), col, top + 1 + k, bool(p.skip), int(p.params)))
    return boxes, headers


def _arcs(boxes: Sequence[Box], family: str, shortcut: str) -> list[Arc]:
    """One arc per skip-bridged block (a piece per column where a block wraps), top to bottom of its boxes."""
    arcs: list[Arc] = []
    first_stage = next((stage_of(b.name) for b in boxes if b.skip), None)
    k = 0
    while k < len(boxes):
        b = boxes[k]
        if not b.skip:
            k += 1
            continue
        group = [b]
        while k + 1 < len(boxes) and boxes[k + 1].skip and block_of(boxes[k + 1].name) == block_of(b.name):
            k += 1
            group.append(boxes[k])
        k += 1
        block = block_of(b.name)
        projection = ""
        if any(is_projection(g.name) for g in group):
            projection = "1×1 conv"
        elif family in CIFAR_STAGED and block.endswith(".0") and stage_of(b.name) != first_stage:
            projection = "zero-pad" if shortcut == "A" else "projection"
        for col in sorted({g.col for g in group}):
            rows = [g.row for g in group if g.col == col]
            arcs.append(Arc(col, min(rows), max(rows), projection))
    return arcs


def _long_skips(boxes: Sequence[Box]) -> list[tuple[Box, Box]]:
    """U-Net: (last box of encoder level L, first conv of the decoder stage that joins level L)."""
    if not any(b.skip for b in boxes):
        return []
    levels = ["inc"] + sorted({stage_of(b.name) for b in boxes if b.name.startswith("downs.")})
    ups = sorted({stage_of(b.name) for b in boxes if b.name.startswith("ups.")})
    depth = len(levels) - 1
    out = []
    for j, up in enumerate(ups):
        level = depth - 1 - j
        enc = [b for b in boxes if stage_of(b.name) == levels[level]] if 0 <= level < len(levels) else []
        dec = [b for b in boxes if stage_of(b.name) == up and not b.name.endswith(".up")]
        if enc and dec:
            out.append((enc[-1], dec[0]))
    return out


def network_map(layers: Sequence[Any], family: str = "", shortcut: str = "A") -> go.Figure:
    """Plotly figure of a run's probe layers (objects with idx, name, skip, params), stages in columns."""
    unet = _is_unet([p.name for p in layers])
    boxes, headers = (_unet if unet else _columns)(layers)
    fig = go.Figure()
    if not boxes:
        return fig
    for b in boxes:
        fill = "#c5b0d5" if is_projection(b.name) else (BRIDGED if b.skip else PLAIN)
        fig.add_shape(type="rect", x0=b.col, x1=b.col + BOX_W, y0=b.row - 0.42, y1=b.row + 0.42,
                      fillcolor=fill, line={"color": "#888", "width": 1}, layer="below")  # fmt: skip
    fig.add_trace(go.Scatter(
        x=[b.col + BOX_W / 2 for b in boxes], y=[b.row for b in boxes], mode="text", showlegend=False,
        text=[b.label for b in boxes], textfont={"size": FONT, "color": "#222"},
        customdata=[[b.name, b.params, "yes" if b.skip else "no"] for b in boxes],
        hovertemplate="%{customdata[0]}<br>%{customdata[1]:,} parameters<br>skip-bridged: %{customdata[2]}"
                      "<extra></extra>"))  # fmt: skip
    fig.add_trace(go.Scatter(
        x=[c + BOX_W / 2 for c, _, _ in headers], y=[r for _, r, _ in headers], mode="text", showlegend=False,
        text=[f"<b>{t}</b>" for _, _, t in headers], textfont={"size": FONT + 1, "color": "#222"},
        hoverinfo="skip"))  # fmt: skip
    arcs = [] if unet else _arcs(boxes, family, shortcut)
    for a in arcs:
        x0, bulge = a.col + BOX_W + 0.02, 0.1 + 0.12 * min(1.0, (a.bottom - a.top + 1) / 4)
        y0, y1 = a.top - 0.4, a.bottom + 0.4
        color = PROJECTION if a.projection else SKIP
        fig.add_shape(type="path", path=f"M {x0},{y0} C {x0 + bulge},{y0} {x0 + bulge},{y1} {x0},{y1}",
                      line={"color": color, "width": 2, "dash": "dot" if a.projection else "solid"})  # fmt: skip
    down = [a for a in arcs if a.projection]
    if down:  # a ↓ on each downsampling shortcut, its kind in the hover (a text label would cover the next column)
        fig.add_trace(go.Scatter(
            x=[a.col + BOX_W + 0.02 + 0.1 + 0.12 * min(1.0, (a.bottom - a.top + 1) / 4) * 0.75 for a in down],
            y=[(a.top + a.bottom) / 2 for a in down], mode="markers", showlegend=False,
            marker={"symbol": "triangle-down", "size": 11, "color": PROJECTION},
            hovertext=[f"the resolution halves here: {a.projection} shortcut" for a in down],
            hoverinfo="text"))  # fmt: skip
    long = _long_skips(boxes) if unet else []
    for src, dst in long:
        x0, x1 = src.col + BOX_W, dst.col
        y0, y1, lift = src.row, dst.row, 1.5 + 0.3 * (dst.col - src.col)
        fig.add_shape(type="path", path=f"M {x0},{y0} C {x0 + 0.3},{y0 - lift} {x1 - 0.3},{y1 - lift} {x1},{y1}",
                      line={"color": LONG, "width": 2, "dash": "dash"})  # fmt: skip
    # legend entries for what the shapes mean
    legend = [("skip-bridged layer", BRIDGED, "square"), ("layer without a skip", PLAIN, "square")]
    if arcs:
        legend.append(("skip connection (arc over its block)", SKIP, "line-ns"))
    if any(a.projection for a in arcs):
        legend.append(("shortcut where the resolution halves (▼: zero-pad or 1×1 conv)", PROJECTION, "line-ns"))
    if long:
        legend.append(("long skip (encoder → decoder)", LONG, "line-ns"))
    for name, color, symbol in legend:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=name,
                                 marker={"symbol": symbol, "size": 12, "color": color,
                                         "line": {"color": color if symbol == "line-ns" else "#888", "width": 2}}))  # fmt: skip
    ncols = 1 + max(b.col for b in boxes)
    nrows = 1 + max(max(b.row for b in boxes), max(r for _, r, _ in headers))
    width = None if ncols > 4 else max(480, COL_PX * ncols + 60)
    # the legend under the drawing, in a margin made for as many lines as it can wrap to (in a 10-pixel margin
    # a wrapped legend covered the last row: layer1's last block and fc of a resnet-56)
    bottom = 12 + LEGEND_LINE_PX * legend_lines([name for name, _, _ in legend], width or LEGEND_MIN_WIDTH)
    fig.update_xaxes(visible=False, range=[-0.1, ncols + 0.05], fixedrange=True)
    fig.update_yaxes(visible=False, range=[nrows + 0.2, -1.0], fixedrange=True)
    fig.update_layout(height=int(ROW_PX * (nrows + 1) + 50 + bottom),
                      margin={"l": 5, "r": 5, "t": 10, "b": bottom, "autoexpand": False},
                      plot_bgcolor="white", font={"size": FONT}, hoverlabel={"font": {"size": FONT}},
                      legend={"orientation": "h", "x": 0, "y": 0, "yanchor": "top", "font": {"size": FONT}},
                      width=width)  # fmt: skip
    return fig


LEGEND_LINE_PX = 22
LEGEND_MIN_WIDTH = 600  # the narrowest a stretched chart gets on a 1280-pixel screen's Run detail page


def legend_lines(names: Sequence[str], width: int) -> int:
    """How many lines a horizontal legend of ``names`` takes in ``width`` pixels (generous: ~7 px a character
    at FONT, 45 px for the symbol and gap), so the margin above the drawing always holds it."""
    lines, used = 1, 0
    for name in names:
        w = 45 + 7 * len(name)
        if used and used + w > width - 10:
            lines, used = lines + 1, 0
        used += w
    return lines
