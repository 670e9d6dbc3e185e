"""Story 4, long skips (Ronneberger et al. 2015; Drozdzal et al. 2016): a U-Net's encoder→decoder skips
hand the decoder the fine detail that the bottleneck throws away, so without them segmentation IoU drops
and small or thin objects are lost. Measured on the final ``test/miou`` of the same U-Net with
``skip=concat`` (the paper's), ``skip=add`` and ``skip=none``; the Present view adds a prediction gallery
from each run's checkpoint (skipweb.ui.story_view)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from db import metrics
from skipweb import charts
from skipweb.data import get_dataset_info
from skipweb.facts import Metric
from skipweb.stories.base import (
    AGREES,
    CONTRADICTS,
    HIGHER,
    INCONCLUSIVE,
    Finding,
    Group,
    Preset,
    Story,
    StoryView,
    group,
    missing_finding,
    num,
    too_few_seeds,
    versus,
)

KEY = Metric.TEST_MIOU
ACC = Metric.TEST_PIXEL_ACC
TRIVIAL = 0.005  # |mIoU - pixel accuracy / classes| below this: (almost) one class predicted everywhere
SKIPS = ("concat", "add", "none")


def one_class(miou: Group, acc: Group) -> bool:
    """True when a net predicts (almost) one class everywhere: its mIoU is then ≈ pixel accuracy / classes."""
    if not (miou.ok and acc.ok and miou.runs):
        return False
    classes = get_dataset_info(miou.runs[0].dataset).num_classes
    return abs(miou.mean - acc.mean / classes) < TRIVIAL


def vs_none(skip: Group, none: Group, kind: str, trivial: tuple[bool, bool] = (False, False)) -> Finding:
    if not (skip.ok and none.ok):
        return missing_finding(f"{kind} skips against no skips", [skip, none])
    a, b = skip.mean, none.mean
    if all(trivial):
        classes = get_dataset_info(skip.runs[0].dataset).num_classes
        text = (f"{skip.name} and {none.name} both predict essentially one class everywhere (test mIoU "
                f"{num(a)} and {num(b)} ≈ pixel accuracy ÷ {classes} classes): not enough learned to compare. "
                "Train longer.")  # fmt: skip
        return Finding(text, INCONCLUSIVE, {kind: a, "none": b})
    if few := too_few_seeds("test mIoU", [skip, none]):
        return few
    v = versus(skip, none)
    verdict = v.verdict(HIGHER)
    tail = {AGREES: f": the long skips added {num(v.diff)} IoU.",
            CONTRADICTS: ": contrary to Ronneberger et al., the long skips lowered IoU.",
            INCONCLUSIVE: ": no difference beyond the noise."}[verdict]  # fmt: skip
    text = f"The U-Net with {kind} skips reached test mIoU {skip.shown}; without skips {none.shown} {v.pair}{tail}"
    return Finding(text, verdict, v.values())


def build(db: Any, runs: list[Any], preset: Preset) -> StoryView:
    latest = metrics.latest(db, [r.id for r in runs])
    depth = max(preset.families["unet"])
    groups = {s: group(runs, latest, KEY, "unet", depth, skip=s) for s in SKIPS}
    trivial = {s: one_class(g, group(runs, latest, ACC, "unet", depth, skip=s)) for s, g in groups.items()}
    view = StoryView(findings=[vs_none(groups[s], groups["none"], s, (trivial[s], trivial["none"]))
                               for s in ("concat", "add")])  # fmt: skip
    bars = [(s, g) for s, g in groups.items() if g.ok]
    if bars:
        colors = charts.color_map([s for s, _ in bars])
        fig = go.Figure(
            go.Bar(
                x=[f"skip={s}" for s, _ in bars],
                y=[g.mean for _, g in bars],
                text=[num(g.mean) for _, g in bars],
                marker_color=[colors[s] for s, _ in bars],
            )
        )
        fig.update_layout(title=f"unet-{depth}: final test mIoU by skip", yaxis_title="test mIoU",
                          yaxis_range=[0, 1], margin={"t": 50, "l": 60, "r": 20, "b": 50})  # fmt: skip
        view.figures.append(("Final test mean IoU (mean over seeds).", fig))
    for s, g in groups.items():  # one finished run per variant for the gallery
        done = [r for r in g.runs if r.status == "succeeded"]
        if done:
            view.gallery.append((f"skip={s}", min(done, key=lambda r: r.seed)))
    if view.gallery:
        view.notes.append("Gallery: the first test images with the truth and each variant's prediction.")
    return view


STORY = Story(
    key="long-skips",
    title="Long skips: U-Net with concat, add and no skips",
    button="U-Net skips",
    claim=(
        "A U-Net's long encoder→decoder skips carry the spatial detail the bottleneck loses: without them "
        "segmentation IoU drops and small or thin objects disappear from the predictions."
    ),
    papers=(
        ("Ronneberger, Fischer & Brox 2015, U-Net", "https://arxiv.org/abs/1505.04597"),
        (
            "Drozdzal et al. 2016, The Importance of Skip Connections in Biomedical Image Segmentation",
            "https://arxiv.org/abs/1608.04117",
        ),  # fmt: skip
    ),
    preset=Preset(
        families={"unet": [3]},
        options={"skip": ["concat", "add", "none"], "width": [16]},
        dataset="shapes",
        real_dataset="oxford-pets",
    ),
    builder=build,
    summary="unet-3 (width 16) on shapes with concat vs add vs no long skips: IoU and predictions.",
)
