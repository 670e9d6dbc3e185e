"""Story 2, gradient regimes at initialisation: measured on the per-layer gradient norms of the FIRST probe
step (step 1: the gradient of the very first batch, before any update).

* With BatchNorm, a deep plain net's early-layer gradients are much larger than its last layer's, and
  more so the deeper it is (Yang et al. 2019: BatchNorm causes gradient explosion at initialisation);
  the identity shortcuts of a ResNet keep the profile nearly flat.
* Without normalisation and with small N(0, 0.01) weights, the gradient vanishes on its way down a deep
  plain net (Glorot & Bengio 2010); the ResNet's identity path still carries it to the first layer.

The ratio is first probe layer / last probe layer (the stem conv and the classifier).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from db import blocks, metrics
from skipweb import charts
from skipweb.charts import blocks as charts_blocks
from skipweb.stories.base import (
    AGREES,
    CONTRADICTS,
    INCONCLUSIVE,
    Finding,
    Preset,
    Story,
    StoryView,
    matching,
    want,
)
from skipweb.stories.numbers import num, ratio, times

BN = {"norm": "batch", "init": "kaiming"}
SMALL = {"norm": "none", "init": "small"}
VANISHED = 0.01  # plain's first-layer gradient below 1% of the ResNet twin's counts as vanished


@dataclass
class Init:
    """One configuration's gradient at step 1: first and last probe layers, per seed (``first``, ``last``
    and ``profile`` are the lowest seed's; ``ratios`` has every seed's first/last ratio)."""

    name: str
    runs: list[Any]
    first: float = math.nan
    last: float = math.nan
    profile: np.ndarray | None = None
    ratios: list[float] = field(default_factory=list)
    firsts: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.profile is not None

    @property
    def ratio(self) -> float:
        """The median over seeds of the first/last gradient ratio."""
        return float(np.median(self.ratios)) if self.ratios else ratio(self.first, self.last)

    @property
    def spread(self) -> str:
        """``(1.2×–3.4× over 3 seeds)``, or ``(1 seed)``."""
        if len(self.ratios) < 2:
            return "(1 seed)"
        return f"({times(min(self.ratios))}–{times(max(self.ratios))} over {len(self.ratios)} seeds)"

    def why_missing(self) -> str:
        return self.name if not self.runs else f"{self.name} (no gradient probe at step 1 yet)"


def init_grads(runs: Sequence[Any], grads: dict, family: str, depth: int, opts: dict) -> Init:
    found = sorted(matching(runs, family, depth, **opts), key=lambda r: r.seed)
    out = Init(want(family, depth, **opts), found)
    for r in found:
        steps, m = grads.get(r.id, (np.zeros(0), np.zeros((0, 0))))
        if len(steps) and int(steps[0]) == 1 and m.shape[1] >= 2:
            if out.profile is None:
                out.first, out.last, out.profile = float(m[0, 0]), float(m[0, -1]), m[0]
            out.ratios.append(ratio(float(m[0, 0]), float(m[0, -1])))
            out.firsts.append(float(m[0, 0]))
    return out


def separated(above: Sequence[float], below: Sequence[float]) -> bool:
    """Every seed of ``above`` exceeds every seed of ``below``: a difference that no seed's noise blurs."""
    return bool(above) and bool(below) and min(above) > max(below)


def _lack(what: str, items: Sequence[Init]) -> Finding:
    lacking = tuple(i.why_missing() for i in items if not i.ok)
    return Finding(f"Cannot test {what} yet: no step-1 gradients of {', '.join(lacking)}.", INCONCLUSIVE,
                   missing=lacking)  # fmt: skip


def _vals(plain: Init, res: Init) -> dict[str, float]:
    return {"plain_ratio": plain.ratio, "resnet_ratio": res.ratio, "plain_first": plain.first,
            "resnet_first": res.first, "plain_last": plain.last}  # fmt: skip


def explode(plain: Init, res: Init, depth: int) -> Finding:
    """With BatchNorm: the plain net's first/last ratio should be above 1 and above the ResNet's."""
    if not (plain.ok and res.ok):
        return _lack(f"the BatchNorm regime at depth {depth}", [plain, res])
    p, r = plain.ratio, res.ratio
    head = (f"With BatchNorm, at initialisation plain-{depth}'s first-layer gradient is {times(p)} its last "
            f"layer's {plain.spread}; resnet-{depth}'s is {times(r)} {res.spread}")  # fmt: skip
    if min(plain.ratios) > 1 and separated(plain.ratios, res.ratios):
        return Finding(head + ": the plain net's early-layer gradients grew, in every seed.", AGREES,
                       _vals(plain, res))  # fmt: skip
    if max(plain.ratios) <= 1 or separated(res.ratios, plain.ratios):
        return Finding(f"Contrary to the expected explosion, {head[0].lower()}{head[1:]}.", CONTRADICTS,
                       _vals(plain, res))  # fmt: skip
    return Finding(head + ": the seeds disagree, so the difference is within the noise.", INCONCLUSIVE,
                   _vals(plain, res))  # fmt: skip


def growth(items: Sequence[tuple[int, Init]]) -> Finding:
    """With BatchNorm the plain net's ratio should grow with depth."""
    if len(items) < 2 or not all(i.ok for _, i in items):
        return _lack("the growth with depth", [i for _, i in items])
    (d0, a), (d1, b) = items[0], items[-1]
    values = {f"plain-{d0}": a.ratio, f"plain-{d1}": b.ratio}
    text = (f"plain's first/last gradient ratio at initialisation goes from {times(a.ratio)} {a.spread} at {d0} "
            f"layers to {times(b.ratio)} {b.spread} at {d1}")  # fmt: skip
    if separated(b.ratios, a.ratios):
        return Finding(text + ": the explosion grows with depth, in every seed.", AGREES, values)
    if separated(a.ratios, b.ratios):
        return Finding(f"Contrary to the expected trend, {text}: it shrank with depth.", CONTRADICTS, values)
    return Finding(f"{text[0].upper()}{text[1:]}: the seeds overlap, so no trend beyond the noise.", INCONCLUSIVE,
                   values)  # fmt: skip


def vanish(plain: Init, res: Init, depth: int) -> Finding:
    """Without normalisation, small init: the plain net's first-layer gradient should be a tiny fraction
    of the ResNet twin's (exactly 0 when it underflowed float32)."""
    if not (plain.ok and res.ok):
        return _lack(f"the small-init regime at depth {depth}", [plain, res])
    rel = ratio(float(np.median(plain.firsts)), float(np.median(res.firsts)))
    worst = max(ratio(p, r) for p in plain.firsts for r in res.firsts)  # the least vanished pair of seeds
    values = {**_vals(plain, res), "relative": rel}
    where = (f"Without normalisation and with N(0, 0.01) weights, plain-{depth}'s first-layer gradient at "
             f"initialisation is {num(plain.first)}")  # fmt: skip
    if plain.profile is not None and not np.any(plain.profile):
        detail = (f", as in every layer (float32 underflow); resnet-{depth}'s first-layer gradient is "
                  f"{num(res.first)}")  # fmt: skip
    else:
        detail = (f" ({times(plain.ratio)} its last layer's), {times(rel)} resnet-{depth}'s "
                  f"({num(res.first)})")  # fmt: skip
    if worst < VANISHED:
        return Finding(where + detail + f": the gradient vanished on its way down, in all {len(plain.firsts)} "
                       "seeds.", AGREES, values)  # fmt: skip
    if rel < VANISHED:
        return Finding(where + detail + ": vanished in some seeds but not all, so not beyond the noise.",
                       INCONCLUSIVE, values)  # fmt: skip
    return Finding(f"Contrary to the expected vanishing, {where[0].lower()}{where[1:]}{detail}.", CONTRADICTS,
                   values)  # fmt: skip


def skip_share(runs: Sequence[Any], series: dict, depth: int) -> tuple[Finding, Any]:
    """With BatchNorm, at step 1: in how many of resnet's blocks does the skip path carry more of the
    gradient than the block's own layers (skipweb.training.probes.BlockProbe)? Also returns the series
    used."""
    found = sorted(matching(runs, "resnet", depth, **BN), key=lambda r: r.seed)
    name = want("resnet", depth, **BN)
    s = next((series[r.id] for r in found if series.get(r.id) and int(series[r.id].steps[0]) == 1), None)
    if s is None:
        why = name if not found else f"{name} (no block probes at step 1 yet)"
        return Finding(f"Cannot measure resnet-{depth}'s skip paths yet: no block probes of {why}.", INCONCLUSIVE,
                       missing=(why,)), None  # fmt: skip
    r = s.ratio()[0]
    r = r[np.isfinite(r)]
    more, med = int((r > 1).sum()), float(np.median(r))
    values = {"blocks": float(len(r)), "skip_wins": float(more), "median": med, "nearest_input": float(r[0])}
    text = (f"At initialisation, resnet-{depth}'s skip paths carry more of the gradient than the blocks' own "
            f"layers in {more} of {len(r)} blocks (median skip/branch ratio {times(med)}; {times(float(r[0]))} "
            f"in the block nearest the input)")  # fmt: skip
    if more > len(r) / 2:
        return Finding(text + ": the identity path is the main road back.", AGREES, values), s
    return Finding(f"Contrary to the picture of shortcuts carrying the gradient, {text[0].lower()}{text[1:]}.",
                   CONTRADICTS, values), s  # fmt: skip


def build(db: Any, runs: list[Any], preset: Preset) -> StoryView:
    ids = [r.id for r in runs]
    grads = metrics.read_grad(db, ids, steps=[1])
    depths = sorted(set(preset.families["plain"]))
    view = StoryView()
    pick = {
        (fam, d, name): init_grads(runs, grads, fam, d, opts)
        for fam in ("plain", "resnet")
        for d in depths
        for name, opts in (("bn", BN), ("small", SMALL))
    }
    for d in depths:
        view.findings.append(explode(pick["plain", d, "bn"], pick["resnet", d, "bn"], d))
    view.findings.append(growth([(d, pick["plain", d, "bn"]) for d in depths]))
    for d in depths:
        view.findings.append(vanish(pick["plain", d, "small"], pick["resnet", d, "small"], d))
    series = blocks.read_blocks(db, ids, stats=("skip_grad", "branch_grad"))
    shares = {d: skip_share(runs, series, d) for d in depths}
    view.findings += [finding for finding, _ in shares.values()]
    measured = {f"resnet-{d}": s for d, (_, s) in shares.items() if s is not None}
    if measured:
        fig = charts_blocks.block_profile(measured, "ratio", step=1)
        view.figures.append(("With BatchNorm: skip/branch gradient ratio per block at step 1 (above 1: the skip "
                             "carries more).", fig))  # fmt: skip
    for name, title in (
        ("bn", "With BatchNorm (kaiming init)"),
        ("small", "No normalisation, N(0, 0.01) init"),
    ):
        series = {
            f"{fam}-{d}": (np.array([1]), item.profile[None, :])
            for (fam, d, n), item in pick.items()
            if n == name and item.ok
        }
        if series:
            fig = charts.grad_vs_depth(series, 1)
            fig.update_layout(title=f"{title}: gradient norm per layer at step 1")
            view.figures.append((f"{title}. Zeros (underflow) do not appear on the log axis.", fig))
    return view


STORY = Story(
    key="gradient-regimes",
    title="Gradient regimes at initialisation: explode with BatchNorm, vanish without",
    button="Gradient regimes",
    claim=(
        "At initialisation, deep plain nets with BatchNorm have early-layer gradients far larger than their "
        "last layer's, growing with depth; without normalisation and with small weights the gradient "
        "vanishes before it reaches the first layers. Identity shortcuts keep both in check."
    ),
    papers=(
        ("Yang et al. 2019, A Mean Field Theory of Batch Normalization", "https://arxiv.org/abs/1902.08129"),
        (
            "Glorot & Bengio 2010, Understanding the difficulty of training deep feedforward neural networks",
            "https://proceedings.mlr.press/v9/glorot10a.html",
        ),  # fmt: skip
    ),
    preset=Preset(
        families={"plain": [56, 110], "resnet": [56, 110]},
        options={"norm": ["batch", "none"], "init": ["kaiming", "small"]},
        dataset="digits",
        recipe={"epochs": 1},  # the story reads step-1 gradients only: one epoch is all it needs
        probe_every=5,
        real_dataset="cifar10",
    ),
    builder=build,
    summary=(
        "plain vs resnet at 56 and 110 layers, BatchNorm vs none × kaiming vs small init; the story reads "
        "the step-1 gradients of BatchNorm+kaiming and none+small (the other two are controls)."
    ),
)
