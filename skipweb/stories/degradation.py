"""Story 1, degradation (He et al. 2015, Fig. 1): a deeper plain net ends with HIGHER training error than a
shallower one, which overfitting cannot explain; with identity shortcuts the deeper net trains as well or
better. Measured on each run's final ``epoch/train_error`` (mean over seeds)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from db import metrics
from skipweb import charts
from skipweb.charts import curves as charts_curves
from skipweb.charts import runs as charts_runs
from skipweb.facts import Metric
from skipweb.stories.base import (
    AGREES,
    CONTRADICTS,
    HIGHER,
    INCONCLUSIVE,
    LOWER,
    Finding,
    Preset,
    Story,
    StoryView,
    compared,
    group,
    judge,
)

KEY = Metric.EPOCH_TRAIN_ERROR


def deeper_vs_shallower(
    runs: Sequence[Any], latest: dict, family: str, lo: int, hi: int, worse: bool
) -> Finding:
    """``worse``: the claim is that the deeper net ends with higher training error (plain); otherwise
    that it ends no higher (resnet). Differences within the noise over seeds are "the same"."""
    v = compared("training error", group(runs, latest, KEY, family, hi), group(runs, latest, KEY, family, lo))
    if isinstance(v, Finding):
        return v
    head = f"{family}-{hi} ended with {v.says('training error')} {v.pair}"
    if worse:
        verdict = v.verdict(HIGHER)
        tail = {AGREES: ": the deeper plain net trains worse, as He et al. found.",
                CONTRADICTS: ": no degradation in these runs, contrary to He et al.",
                INCONCLUSIVE: ": no degradation beyond the noise in these runs."}[verdict]  # fmt: skip
    else:
        verdict = v.verdict(LOWER, or_same=True)
        tail = ": depth did not hurt." if verdict == AGREES else ": depth hurt it, contrary to He et al."
    return Finding(head + tail, verdict, v.values())


def at_depth(runs: Sequence[Any], latest: dict, depth: int) -> Finding:
    """The shortcut's effect at one depth: resnet should end below plain."""
    v = compared("training error", group(runs, latest, KEY, "resnet", depth), group(runs, latest, KEY, "plain", depth))
    if isinstance(v, Finding):
        return v
    tails = {AGREES: ": the shortcuts fixed what depth broke.",
             CONTRADICTS: ": contrary to He et al., the shortcuts did not help.",
             INCONCLUSIVE: ": no difference beyond the noise."}  # fmt: skip
    return judge(v, LOWER, f"At {depth} layers, resnet-{depth} ended with {v.says('training error', lower='lower')}",
                 tails)  # fmt: skip


def build(db: Any, runs: list[Any], preset: Preset) -> StoryView:
    latest = metrics.latest(db, [r.id for r in runs])
    lo, hi = min(preset.families["plain"]), max(preset.families["plain"])
    view = StoryView(
        findings=[
            deeper_vs_shallower(runs, latest, "plain", lo, hi, worse=True),
            deeper_vs_shallower(runs, latest, "resnet", lo, hi, worse=False),
            at_depth(runs, latest, hi),
        ],
        notes=[
            "Training error = the mean error over the last epoch's training batches (the thin curves of "
            "He et al.'s Fig. 1), averaged over seeds where there are several."
        ],  # fmt: skip
    )
    rows = []
    for r in runs:
        value = latest.get(r.id, {}).get(KEY)
        if r.status == "succeeded" and value is not None:
            rows.append({"family": charts.series_name(r.label, r.depth), "depth": r.depth, "label": r.label,
                         "params": r.params, "value": value})  # fmt: skip
    if rows:
        view.figures.append(("Final training error against depth (mean ± std over seeds).",
                             charts_runs.final_error_vs_depth(rows, KEY)))  # fmt: skip
    df = metrics.read_metrics(db, [r.id for r in runs], [KEY])
    if len(df):
        labels = {r.id: r.label if r.seed == 0 else f"{r.label} · seed {r.seed}" for r in runs}
        fig = charts_curves.curves(df, KEY, labels, x="epoch")
        view.figures.append(("Training error per epoch.", fig))
    return view


STORY = Story(
    key="degradation",
    title="Degradation: deeper plain nets train worse, residual ones don't",
    button="Degradation",
    claim=(
        "A deeper plain network ends with higher training error than a shallower one (the degradation "
        "problem); with identity shortcuts the deeper network trains at least as well."
    ),
    papers=(
        (
            "He, Zhang, Ren & Sun 2015, Deep Residual Learning for Image Recognition (Fig. 1, 4)",
            "https://arxiv.org/abs/1512.03385",
        ),
    ),  # fmt: skip
    preset=Preset(
        families={"plain": [20, 56], "resnet": [20, 56]},
        dataset="digits",
        probe_every=5,
        real_dataset="cifar10",
    ),
    builder=build,
    summary="plain-20/56 vs resnet-20/56: training error against depth.",
)
