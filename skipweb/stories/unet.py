"""Story 4, long skips (Ronneberger et al. 2015; Drozdzal et al. 2016): a U-Net's encoder→decoder skips
hand the decoder the fine detail that the bottleneck throws away, so without them segmentation IoU drops
and small or thin objects are lost. Measured on the final ``test/miou`` of the same U-Net with
``skip=concat`` (the paper's), ``skip=add`` and ``skip=none``; the Present view adds a prediction gallery
from each run's checkpoint (skipweb.ui.story_view)."""

from __future__ import annotations

import functools
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
    too_few_seeds,
    versus,
)
from skipweb.stories.numbers import num

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


@functools.lru_cache(maxsize=8)
def kinds_guessed(dataset: str) -> float | None:
    """The test mIoU of a segmenter that finds every object but guesses its class (evaluate.figure_ground_miou)
    on the dataset's test masks; None where the data is not on this machine."""
    from skipweb.data import DatasetError, load_dataset
    from skipweb.settings import get_settings
    from skipweb.training.evaluate import figure_ground_miou

    try:
        test = load_dataset(dataset, data_dir=get_settings().datasets_dir, download=False).test
    except DatasetError:
        return None
    return figure_ground_miou(test.y, get_dataset_info(dataset).num_classes)


def kinds_note(level: float, means: dict[str, float]) -> str:
    """Whether the variants learned the classes, judged against :func:`kinds_guessed`'s level."""
    what = (f"{level:.2f}, the test mIoU of a net that separates every object from the background perfectly "
            "and guesses its class")  # fmt: skip
    above = [name for name, m in means.items() if m > level]
    if not above:
        return (f"Every variant ends below {what}: none has learned to tell the classes apart, so the findings "
                "compare how well each finds the objects, which is what long skips carry.")  # fmt: skip
    if len(above) == len(means):
        return f"Every variant ends above {what}: all have learned to tell the classes apart, at least in part."
    verb = "ends" if len(above) == 1 else "end"
    return f"Only {', '.join(above)} {verb} above {what}: the others have not learned to tell the classes apart."


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
        level = kinds_guessed(runs[0].dataset)
        if level is not None:
            fig.add_hline(y=level, line_dash="dash", line_color="grey",
                          annotation_text=f"finds the objects, guesses their class: {level:.2f}")  # fmt: skip
            view.notes.append(kinds_note(level, {f"skip={name}": g.mean for name, g in bars}))
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
        # 9 runs in about 8 CPU-minutes; 30 epochs (the shapes default) triple that, and a width-16 U-Net
        # learned no more of the kinds with them (0.41, one seed: bench/RESULTS.md)
        recipe={"epochs": 10},
        real_dataset="oxford-pets",
    ),
    builder=build,
    caveat=(
        "Measured (bench/stories.py, 3 seeds, width 16, 10 epochs): concat 0.34, add 0.34, without skips 0.30 "
        "test mIoU, every variant below 0.40, the level of a net that finds every shape and guesses its kind. "
        "So on this budget the findings compare how well each U-Net finds the shapes, not whether it tells "
        "circles, squares and triangles apart. Telling them apart takes a wider net and longer training: "
        "unet-2 at width 64 with the shapes default of 30 epochs reaches 0.63 ± 0.02 (3 seeds, bench/RESULTS.md; about 35 "
        "CPU-minutes a run). Ronneberger et al.'s setting, fine boundaries in real images, is oxford-pets on a GPU."
    ),
    summary="unet-3 (width 16) on shapes with concat vs add vs no long skips: IoU and predictions.",
)
