"""Story 1, degradation (He et al. 2015, Fig. 1): a deeper plain net ends with HIGHER training error than a
shallower one, which overfitting cannot explain; with identity shortcuts the deeper net trains as well or
better. Measured on each run's final ``epoch/train_error`` (mean over seeds)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from db import metrics
from skipweb import charts
from skipweb.stories.base import (
    AGREES,
    CONTRADICTS,
    Finding,
    Preset,
    Story,
    StoryView,
    at_chance,
    group,
    missing_finding,
    num,
    ratio,
    times,
)

KEY = "epoch/train_error"


def deeper_vs_shallower(
    runs: Sequence[Any], latest: dict, family: str, lo: int, hi: int, worse: bool
) -> Finding:
    """``worse``: the claim is that the deeper net ends with higher training error (plain); otherwise
    that it ends no higher (resnet)."""
    shallow, deep = group(runs, latest, KEY, family, lo), group(runs, latest, KEY, family, hi)
    if not (shallow.ok and deep.ok):
        return missing_finding(f"{family}-{hi} against {family}-{lo}", [shallow, deep])
    a, b = deep.mean, shallow.mean
    if guessed := at_chance("training error", [deep, shallow], [a, b]):
        return guessed
    pair = f"({num(a)} vs {num(b)}{deep.seeds or shallow.seeds})"
    values = {f"{family}-{hi}": a, f"{family}-{lo}": b, "ratio": ratio(a, b)}
    if worse:
        if a > b:
            if b == 0:  # no ratio to a zero error
                text = f"{family}-{lo} fit its training set exactly and {family}-{hi} did not {pair}."
            else:
                text = (f"{family}-{hi} ended with {times(ratio(a, b))} the training error of {family}-{lo} "
                        f"{pair}.")  # fmt: skip
            return Finding(text, AGREES, values)
        word = "LOWER" if a < b else "the SAME"
        text = (f"Contrary to He et al., {family}-{hi} ended with {word} training error than {family}-{lo} "
                f"{pair}: no degradation in these runs.")  # fmt: skip
        return Finding(text, CONTRADICTS, values)
    if a <= b:
        rel = f"{times(ratio(a, b))} the" if b > 0 else "the same"
        text = f"{family}-{hi} ended with {rel} training error of {family}-{lo} {pair}: depth did not hurt."
        return Finding(text, AGREES, values)
    much = f"{times(ratio(a, b))} as much" if b > 0 else f"{family}-{lo} fit its training set exactly"
    text = (f"Contrary to He et al., {family}-{hi} ended with HIGHER training error than {family}-{lo} "
            f"{pair}: {much}.")  # fmt: skip
    return Finding(text, CONTRADICTS, values)


def at_depth(runs: Sequence[Any], latest: dict, depth: int) -> Finding:
    """The shortcut's effect at one depth: resnet should end below plain."""
    plain, res = group(runs, latest, KEY, "plain", depth), group(runs, latest, KEY, "resnet", depth)
    if not (plain.ok and res.ok):
        return missing_finding(f"resnet-{depth} against plain-{depth}", [plain, res])
    a, b = res.mean, plain.mean
    if guessed := at_chance("training error", [res, plain], [a, b]):
        return guessed
    values = {f"resnet-{depth}": a, f"plain-{depth}": b, "ratio": ratio(a, b)}
    pair = f"({num(a)} vs {num(b)}{res.seeds or plain.seeds})"
    if a < b:
        text = f"At {depth} layers, resnet-{depth}'s training error is {times(ratio(a, b))} plain-{depth}'s {pair}."
        return Finding(text, AGREES, values)
    text = (f"Contrary to He et al., at {depth} layers resnet-{depth} ended with no lower training error "
            f"than plain-{depth} {pair}.")  # fmt: skip
    return Finding(text, CONTRADICTS, values)


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
                             charts.final_error_vs_depth(rows, KEY)))  # fmt: skip
    df = metrics.read_metrics(db, [r.id for r in runs], [KEY])
    if len(df):
        labels = {r.id: r.label if r.seed == 0 else f"{r.label} · seed {r.seed}" for r in runs}
        fig = charts.curves(df, KEY, labels, x="epoch")
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
        epochs=10,
        batch_size=32,
        probe_every=5,
        real_dataset="cifar10",
    ),
    builder=build,
    summary="plain-20/56 vs resnet-20/56: training error against depth.",
)
