"""Story 6, loss landscapes (Li et al. 2018): around its final weights, a deep net without skip
connections sits in a sharp, chaotic region of the loss surface; its residual twin in a smooth, wide one.

Measured on each run's newest stored 2-D landscape (``db.landscapes``, filter-normalized directions):

* **sharpness** = mean loss increase over the grid, ``mean(loss) − loss(centre)``; grid points whose loss
  overflowed (stored as None) make a surface sharper than any finite one;
* **non-monotone fraction**: share of grid points whose loss is LOWER than at their neighbour one step
  nearer the centre (0 for a clean bowl; chaotic surfaces score higher), reported alongside.

Two landscapes are compared only when they span the same range. A run without a landscape makes its
finding inconclusive and says how to compute one (``skipweb landscape RUN``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from db.landscapes import latest_landscapes
from skipweb.charts.landscape import interp_figure, landscape_figures
from skipweb.stories.base import (
    AGREES,
    CONTRADICTS,
    INCONCLUSIVE,
    MIN_SEEDS,
    Finding,
    Preset,
    Story,
    StoryView,
    matching,
    want,
)
from skipweb.stories.numbers import num


@dataclass(frozen=True)
class Shape:
    """Numbers computed from one stored 2-D landscape."""

    centre: float
    mean: float
    edge: float  # mean finite loss on the grid's border
    overflow: int  # grid points whose loss was not finite
    non_monotone: float
    range: float

    @property
    def sharpness(self) -> float:
        return self.mean - self.centre


def shape(record: Any) -> Shape:
    z = np.array([[np.nan if v is None else v for v in row] for row in record.loss], dtype=float)
    ys, xs = np.asarray(record.y, dtype=float), np.asarray(record.x, dtype=float)
    ci, cj = int(np.abs(ys).argmin()), int(np.abs(xs).argmin())
    finite = np.isfinite(z)
    border = np.zeros_like(finite)
    border[[0, -1], :] = border[:, [0, -1]] = True
    lower = total = 0
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            if (i, j) == (ci, cj):
                continue
            ni, nj = i - int(np.sign(i - ci)), j - int(np.sign(j - cj))  # one step nearer the centre
            if finite[i, j] and finite[ni, nj]:
                total += 1
                lower += bool(z[i, j] < z[ni, nj])
    return Shape(
        centre=float(z[ci, cj]),
        mean=float(z[finite].mean()) if finite.any() else math.nan,
        edge=float(z[border & finite].mean()) if (border & finite).any() else math.nan,
        overflow=int((~finite).sum()),
        non_monotone=lower / total if total else math.nan,
        range=float(record.range),
    )


def describe(name: str, s: Shape) -> str:
    over = f", {s.overflow} grid point{'s' if s.overflow > 1 else ''} overflowed" if s.overflow else ""
    return (f"{name}'s loss rises by {num(s.sharpness)} on average over the grid (centre {num(s.centre)}, "
            f"edge {num(s.edge)}{over}; {s.non_monotone:.0%} of points dip below their inner neighbour)")  # fmt: skip


def compare(runs: Sequence[Any], lands: dict, depth: int) -> Finding:
    picked: dict[str, Any] = {}
    lacking: list[str] = []
    hints: list[str] = []
    for fam in ("plain", "resnet"):
        found = sorted(matching(runs, fam, depth), key=lambda r: r.seed)
        with_one = [r for r in found if r.id in lands]
        if with_one:
            picked[fam] = with_one[0]
        elif not found:
            lacking.append(want(fam, depth))
        else:
            r = found[0]
            lacking.append(f"run {r.id} ({r.label}, {r.status})")
            hints.append(f"`skipweb landscape {r.id}`" if r.finished else f"run {r.id} must finish first")
    if lacking:
        how = f" Compute one: {'; '.join(hints)} (or Run detail → Compute landscape)." if hints else ""
        return Finding(
            f"Cannot compare the landscapes of plain-{depth} and resnet-{depth} yet: no stored landscape for "
            f"{', '.join(lacking)}.{how}",
            INCONCLUSIVE,
            missing=tuple(lacking),
            missing_what="landscapes",
            hint=how.strip(),
        )
    # every seed that has both landscapes votes; the sentence describes the lowest such seed
    by_seed = {fam: {r.seed: r for r in matching(runs, fam, depth) if r.id in lands} for fam in ("plain", "resnet")}
    seeds = sorted(set(by_seed["plain"]) & set(by_seed["resnet"]))
    votes = [_sharper(shape(lands[by_seed["plain"][k].id]), shape(lands[by_seed["resnet"][k].id])) for k in seeds]
    if seeds:
        picked = {fam: by_seed[fam][seeds[0]] for fam in by_seed}
    p, r = shape(lands[picked["plain"].id]), shape(lands[picked["resnet"].id])
    values = {"plain_sharpness": p.sharpness, "resnet_sharpness": r.sharpness,
              "plain_non_monotone": p.non_monotone, "resnet_non_monotone": r.non_monotone}  # fmt: skip
    if p.range != r.range:
        return Finding(f"The landscapes of plain-{depth} and resnet-{depth} span different ranges (±{p.range:g} "
                       f"vs ±{r.range:g}); recompute them with the same --range.", INCONCLUSIVE, values)  # fmt: skip
    text = f"{describe(f'plain-{depth}', p)}; {describe(f'resnet-{depth}', r)}"
    n, wins = len(votes), sum(votes)
    values["seeds"], values["plain_sharper_in"] = float(n), float(wins)
    if n < MIN_SEEDS:
        return Finding(f"{text}. Only {n} seed has both landscapes: at least {MIN_SEEDS} are needed to tell the "
                       "shape from the noise.", INCONCLUSIVE, values, missing=(f"seeds of plain-{depth} and "
                       f"resnet-{depth}",), missing_what="landscapes")  # fmt: skip
    if wins == n:
        return Finding(f"{text}: the net without skips sits in the sharper region, in all {n} seeds.", AGREES,
                       values)  # fmt: skip
    if wins == 0:
        return Finding(f"Contrary to Li et al., {text}: the net without skips is not the sharper one in any of "
                       f"{n} seeds.", CONTRADICTS, values)  # fmt: skip
    return Finding(f"{text}: plain was the sharper in {wins} of {n} seeds, so the seeds disagree.", INCONCLUSIVE,
                   values)  # fmt: skip


def _sharper(p: Shape, r: Shape) -> bool:
    return (p.overflow, p.sharpness) > (r.overflow, r.sharpness)


def build(db: Any, runs: list[Any], preset: Preset) -> StoryView:
    ids = [r.id for r in runs]
    lands = latest_landscapes(db, ids, "2d")
    depths = sorted(set(preset.families["plain"]) | set(preset.families["resnet"]))
    view = StoryView(findings=[compare(runs, lands, d) for d in depths])
    if lands:
        view.notes.append(
            "Loss over a fixed subset of training data, BatchNorm in eval mode; centre = final weights."
        )
    for d in depths:
        pair: dict[str, Any] = {}  # the lowest seed of each, the one the findings' sentences describe
        for r in sorted(runs, key=lambda r: (r.family, r.seed)):
            if r.depth == d and r.id in lands and r.family in ("plain", "resnet"):
                pair.setdefault(r.label, lands[r.id])
        if pair:
            contours, _ = landscape_figures(pair)
            view.figures.append(
                (f"Depth {d}: log10 loss around the final weights, one colour scale.", contours)
            )
    lines = latest_landscapes(db, ids, "interp")
    if lines:
        by_label: dict[str, Any] = {}
        for r in sorted(runs, key=lambda r: r.seed):
            if r.id in lines:
                by_label.setdefault(r.label, list(zip(lines[r.id].x, lines[r.id].loss, strict=True)))
        view.figures.append(("Loss on the straight line from the initial to the final weights.",
                             interp_figure(by_label)))  # fmt: skip
    return view


STORY = Story(
    key="landscapes",
    title="Loss landscapes: ResNet vs plain",
    button="Loss landscapes",
    claim=(
        "Skip connections keep the loss surface around the solution smooth and wide; without them a deep "
        "net's surface becomes sharp and chaotic."
    ),
    papers=(
        (
            "Li, Xu, Taylor, Studer & Goldstein 2018, Visualizing the Loss Landscape of Neural Nets",
            "https://arxiv.org/abs/1712.09913",
        ),
    ),  # fmt: skip
    preset=Preset(
        families={"plain": [20, 56], "resnet": [20, 56]},
        dataset="digits",
        probe_every=5,
        landscape=True,
        landscape_grid=11,
        real_dataset="cifar10",
    ),
    builder=build,
    summary="plain-20/56 vs resnet-20/56 with an 11×11 loss landscape after training: sharpness from the grid.",
)
