"""The six reproduction stories on real tiny runs (stories 1-3 here, 4-6 in test_stories_more.py): each
story's preset is trained (1 epoch, CPU, small subsets) into a SQLite database, the story builds, and every
number in its sentences is recomputed here from the stored data. Verdict-logic tests write fabricated
metric or probe rows for runs that were never trained, to force an agreement or a contradiction on
purpose; they are labelled so. Also: the Launch presets and the Present page's story view (AppTest).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from story_helpers import LEARN, TINY, app, build, by_label, fabricate, judged, new_db, report, shown, train

from db import blocks, experiments, metrics, runs
from db.session import dispose_engine
from skipweb.launch import row
from skipweb.stories import AGREES, CONTRADICTS, INCONCLUSIVE, STORIES, get_story, story_experiment
from skipweb.stories.base import num, times


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("datasets")


# ---- the registry and the Launch presets ---------------------------------------------------------------
def test_six_stories_with_valid_presets() -> None:
    assert list(STORIES) == ["degradation", "gradient-regimes", "add-vs-concat", "long-skips", "gates",
                             "landscapes"]  # fmt: skip
    for story in STORIES.values():
        assert story.papers and all(url.startswith("https://") for _, url in story.papers)
        assert story.preset.specs(), story.key  # every combination validates
    with pytest.raises(KeyError, match="valid stories: degradation, gradient-regimes"):
        get_story("nope")


def test_launch_presets_come_from_the_stories() -> None:
    from skipweb.ui.launch import PRESETS

    for story in STORIES.values():
        preset = PRESETS[story.button]
        assert preset["tags"] == story.tag and preset["title"] == story.title
        assert preset["families"] == {f: list(d) for f, d in story.preset.families.items()}
    assert "MLP residual" in PRESETS  # the one preset that is not a story


# ---- 1. degradation ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def degradation(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):
    tmp = tmp_path_factory.mktemp("degradation")
    url = new_db(tmp)
    ids = train(url, data_dir, "degradation", STORIES["degradation"].preset.specs(**LEARN))
    yield {"url": url, "tmp": tmp, "ids": ids}
    dispose_engine(url)


def test_degradation_findings_match_the_runs(degradation) -> None:
    url = degradation["url"]
    view = build(url, "degradation")
    report("degradation", view)
    final = {r.label: metrics.latest(url, [r.id])[r.id]["epoch/train_error"]
             for r in by_label(url, degradation["ids"]).values()}  # fmt: skip
    plain, resnet, depth56 = view.findings
    a, b = final["plain-56"], final["plain-20"]
    if judged(plain, a, b, a > b, chance=0.9) and a > b:
        assert f"{times(a / b)} the training error of plain-20" in plain.text
    elif plain.verdict == CONTRADICTS:
        assert plain.text.startswith("Contrary to He et al., plain-56 ended with")
    a, b = final["resnet-56"], final["resnet-20"]
    judged(resnet, a, b, a <= b, chance=0.9)
    a, b = final["resnet-56"], final["plain-56"]
    judged(depth56, a, b, a < b, chance=0.9)
    assert len(view.figures) == 2


def test_degradation_verdict_logic_with_fabricated_runs(tmp_path: Path) -> None:
    """VERDICT-LOGIC TEST (fabricated metrics): plain-56 ends BELOW plain-20 → contradicts."""
    url = new_db(tmp_path)
    specs = STORIES["degradation"].preset.specs(**TINY)  # plain-20, plain-56, resnet-20, resnet-56
    errs = [0.11, 0.08, 0.10, 0.05]
    exp_ids = fabricate(url, "degradation", specs, [{"epoch/train_error": e} for e in errs])
    view = build(url, "degradation")
    plain, resnet, depth56 = view.findings
    assert plain.verdict == CONTRADICTS
    assert plain.text.startswith(
        "Contrary to He et al., plain-56 ended with LOWER training error than plain-20 (0.08 vs 0.11)"
    )
    assert resnet.verdict == AGREES and "0.5× the training error of resnet-20 (0.05 vs 0.10)" in resnet.text
    assert depth56.verdict == AGREES and "0.62× plain-56's (0.05 vs 0.08)" in depth56.text
    # the textbook case agrees; 2.3× is computed, not written
    metrics.write_batch(url, exp_ids[1], [("epoch/train_error", 2, 2.0, 0.253, 0.0)])
    plain = build(url, "degradation").findings[0]
    assert plain.verdict == AGREES and plain.text == (
        "plain-56 ended with 2.3× the training error of plain-20 (0.25 vs 0.11)."
    )
    # a shallower net at exactly 0 training error: no "inf×" ratio, the sentence says what happened
    metrics.write_batch(url, exp_ids[2], [("epoch/train_error", 2, 2.0, 0.0, 0.0)])
    resnet = build(url, "degradation").findings[1]
    assert resnet.verdict == CONTRADICTS and resnet.text == (
        "Contrary to He et al., resnet-56 ended with HIGHER training error than resnet-20 (0.05 vs 0): "
        "resnet-20 fit its training set exactly."
    )
    # both at chance level (10 digits: guessing errs 0.90): nothing learned, nothing to compare
    metrics.write_batch(url, exp_ids[0], [("epoch/train_error", 2, 2.0, 0.89, 0.0)])
    metrics.write_batch(url, exp_ids[1], [("epoch/train_error", 3, 3.0, 0.91, 0.0)])
    plain = build(url, "degradation").findings[0]
    assert plain.verdict == INCONCLUSIVE and plain.text == (
        "plain-56 and plain-20 both ended near chance level (training error 0.91 and 0.89; guessing gives "
        "0.90 with 10 classes): not enough learned to compare. Train longer."
    )
    # a missing run and an unfinished one: inconclusive, named, no crash
    exp = experiments.create_experiment(url, "partial", tags=["story:degradation"])
    runs.add_runs(url, exp, [row(specs[0]), row(specs[3])])
    view = build(url, "degradation")
    assert all(f.verdict == INCONCLUSIVE for f in view.findings)
    assert view.findings[0].badge == "inconclusive (missing runs: plain-20 (queued), plain-56)"
    assert get_story("degradation").build(url, []).findings[2].missing == ("plain-56", "resnet-56")


# ---- 2. gradient regimes -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gradient_regimes(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):
    """The preset's two regimes the story reads (BatchNorm+kaiming, none+small) at 56 and 110 layers."""
    tmp = tmp_path_factory.mktemp("gradients")
    url = new_db(tmp)
    specs = [s for s in STORIES["gradient-regimes"].preset.specs(**TINY)
             if (s.options["norm"], s.options["init"]) in (("batch", "kaiming"), ("none", "small"))]  # fmt: skip
    assert len(specs) == 8
    ids = train(url, data_dir, "gradient-regimes", specs)
    yield {"url": url, "ids": ids}
    dispose_engine(url)


def test_gradient_regimes_findings_match_step_one(gradient_regimes) -> None:
    url, ids = gradient_regimes["url"], gradient_regimes["ids"]
    view = build(url, "gradient-regimes")
    report("gradient-regimes", view)
    grads = metrics.read_grad(url, ids, steps=[1])
    first = {}
    for r in (runs.get_run(url, i) for i in ids):
        steps, m = grads[r.id]
        assert list(steps) == [1]
        first[r.family, r.depth, r.spec["options"]["norm"]] = (float(m[0, 0]), float(m[0, -1]))
    bn56, bn110, trend, small56, small110, skip56, skip110 = view.findings
    for f, depth in ((bn56, 56), (bn110, 110)):
        p, res = first["plain", depth, "batch"], first["resnet", depth, "batch"]
        rp, rr = p[0] / p[1], res[0] / res[1]
        assert f"plain-{depth}'s first-layer gradient is {times(rp)} its last layer's" in f.text
        assert f"resnet-{depth}'s is {times(rr)}" in f.text
        assert f.verdict == (AGREES if rp > 1 and rp > rr else CONTRADICTS)
    assert trend.verdict in (AGREES, CONTRADICTS)
    for f, depth in ((small56, 56), (small110, 110)):
        p, res = first["plain", depth, "none"], first["resnet", depth, "none"]
        assert f"plain-{depth}'s first-layer gradient at initialisation is {num(p[0])}" in f.text
        assert (
            f"resnet-{depth}'s first-layer gradient is {num(res[0])}" in f.text
            or f"resnet-{depth}'s ({num(res[0])})" in f.text
        )
        assert f.verdict == (AGREES if p[0] < 0.01 * res[0] else CONTRADICTS)
    # the block probes: how many of resnet's blocks get more gradient via the skip than via the branch
    series = blocks.read_blocks(url, ids)
    for f, depth in ((skip56, 56), (skip110, 110)):
        (r,) = [r for r in (runs.get_run(url, i) for i in ids)
                if (r.family, r.depth, r.spec["options"]["norm"]) == ("resnet", depth, "batch")]  # fmt: skip
        s = series[r.id]
        assert s.steps[0] == 1
        ratio = s.ratio()[0]
        more = int((ratio > 1).sum())
        assert f"in {more} of {len(ratio)} blocks (median skip/branch ratio {times(float(np.median(ratio)))}" in f.text
        assert f.verdict == (AGREES if more > len(ratio) / 2 else CONTRADICTS)
    assert len(view.figures) == 3


def test_gradient_regimes_verdict_logic_with_fabricated_probes(tmp_path: Path) -> None:
    """VERDICT-LOGIC TEST (fabricated probe rows): a plain net whose step-1 profile is flatter than the
    ResNet's contradicts the explosion claim; one whose first layer is 1e-9 of the ResNet's agrees."""
    url = new_db(tmp_path)
    specs = [s for s in STORIES["gradient-regimes"].preset.specs(**TINY) if s.depth == 56
             and (s.options["norm"], s.options["init"]) in (("batch", "kaiming"), ("none", "small"))]  # fmt: skip
    profiles = {("plain", "batch"): [0.5, 1.0, 1.0], ("plain", "none"): [1e-12, 1e-6, 1e-3],
                ("resnet", "batch"): [4.0, 1.0, 2.0], ("resnet", "none"): [1e-3, 1e-3, 1e-3]}  # fmt: skip
    probes = [[(1, 0.1, g, [1.0] * 3, [0.1] * 3)] for g in
              (profiles[s.family, s.options["norm"]] for s in specs)]  # fmt: skip
    fabricate(url, "gradient-regimes", specs, [{} for _ in specs], probes)
    bn56, bn110, trend, small56, small110, skip56, _ = build(url, "gradient-regimes").findings
    assert skip56.verdict == INCONCLUSIVE and "no block probes" in skip56.text  # fabricated: no block rows
    assert bn56.verdict == CONTRADICTS and bn56.text.startswith("Contrary to the expected explosion")
    assert "plain-56's first-layer gradient is 0.5× its last layer's; resnet-56's is 2.0×" in bn56.text
    assert (
        small56.verdict == AGREES
        and "is 1.0e-12 (1.0e-9× its last layer's), 1.0e-9× resnet-56's (1.0e-3)" in small56.text
    )
    assert bn110.verdict == small110.verdict == trend.verdict == INCONCLUSIVE
    assert "plain-110 (norm=batch, init=kaiming)" in bn110.missing


# ---- 3. addition vs concatenation ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def add_vs_concat(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):
    """The preset's four nets, on digits instead of shapes-cls to keep the test fast (same code path)."""
    tmp = tmp_path_factory.mktemp("densenet")
    url = new_db(tmp)
    specs = STORIES["add-vs-concat"].preset.specs(**{**LEARN, "dataset": "digits"})
    ids = train(url, data_dir, "add-vs-concat", specs)
    yield {"url": url, "ids": ids}
    dispose_engine(url)


def test_add_vs_concat_findings_match_the_runs(add_vs_concat) -> None:
    from skipweb.stories.base import count

    url = add_vs_concat["url"]
    view = build(url, "add-vs-concat")
    report("add-vs-concat", view)
    recs = by_label(url, add_vs_concat["ids"])
    acc = {k: 1 - metrics.latest(url, [r.id])[r.id]["test/error"] for k, r in recs.items()}
    for f, dense, res in zip(
        view.findings, ("densenet-22", "densenet-40"), ("resnet-20", "resnet-56"), strict=True
    ):
        if judged(f, 1 - acc[dense], 1 - acc[res], acc[dense] > acc[res], chance=0.9, pair=False):
            assert (
                f"{dense} ({count(recs[dense].params)} params) reached test accuracy {num(acc[dense])}"
                in f.text
            )
            assert f"{res} ({count(recs[res].params)}, the closest ResNet in size) {num(acc[res])}" in f.text
    assert view.figures


def test_add_vs_concat_verdict_logic_with_fabricated_runs(tmp_path: Path) -> None:
    """VERDICT-LOGIC TEST (fabricated metrics and parameter counts)."""
    url = new_db(tmp_path)
    specs = STORIES["add-vs-concat"].preset.specs(**TINY)  # resnet-20, resnet-56, densenet-22, densenet-40
    vals = [{"test/error": 0.10, "_params": 270_000}, {"test/error": 0.05, "_params": 850_000},
            {"test/error": 0.20, "_params": 270_000}, {"test/error": 0.04, "_params": 3_000_000}]  # fmt: skip
    fabricate(url, "add-vs-concat", specs, vals)
    small, large = build(url, "add-vs-concat").findings
    assert small.verdict == CONTRADICTS and small.text.startswith("Contrary to Huang et al., densenet-22")
    assert (
        "test accuracy 0.80" in small.text
        and "resnet-20 (270k, the closest ResNet in size) 0.90" in small.text
    )
    assert large.verdict == INCONCLUSIVE and "differ 3.5×: not a matched comparison" in large.text


def test_present_story_shows_the_computed_findings(degradation, monkeypatch) -> None:
    url = degradation["url"]
    at = app(monkeypatch, url, degradation["tmp"], story="degradation")
    assert not at.exception and not at.error
    text = shown(at)
    story = get_story("degradation")
    assert story.title in text and "https://arxiv.org/abs/1512.03385" in text
    for f in build(url, "degradation").findings:
        assert f.text in text
        color = {AGREES: "green", CONTRADICTS: "red"}.get(f.verdict, "gray")
        assert f":{color}-badge[{f.verdict}] {f.text}" in text
    exp = story_experiment(url, "degradation")
    assert f"Computed from experiment #{exp.id}" in text
    assert len(at.get("plotly_chart")) == 2
    # the same story pinned to an experiment that does not exist: one line, no traceback
    at = app(monkeypatch, url, degradation["tmp"], story="degradation", exp="999")
    assert not at.exception and [e.value for e in at.error] == ["Experiment 999 does not exist (deleted?)."]


def test_present_unknown_story_and_index(tmp_path: Path, monkeypatch) -> None:
    url = new_db(tmp_path)
    at = app(monkeypatch, url, tmp_path, story="nope")
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value == (
        "Unknown story 'nope'; valid stories: degradation, gradient-regimes, add-vs-concat, long-skips, gates, "
        "landscapes."
    )
    for query in ({"story": ""}, {}):  # the index: one link per story
        text = shown(app(monkeypatch, url, tmp_path, **query))
        assert all(f"present?story={key}" in text for key in STORIES)
    # a story with no experiment yet: every finding inconclusive, naming the runs it needs
    at = app(monkeypatch, url, tmp_path, story="gates")
    text = shown(at)
    assert not at.exception and "No experiment is tagged `story:gates` yet" in text
    assert ":gray-badge[inconclusive] Cannot test highway-20 against resnet-20 yet" in text


def test_launch_story_preset_tags_and_titles_the_experiment(tmp_path: Path, monkeypatch) -> None:
    url = new_db(tmp_path)
    at = app(monkeypatch, url, tmp_path, page="launch")
    at.button(key="preset_Gradient regimes").click().run()
    assert not at.exception
    assert at.text_input(key="launch_tags").value == "story:gradient-regimes"
    assert "present?story=gradient-regimes" in shown(at)
    assert "16 runs" in shown(at)
    at.number_input(key="launch_epochs").set_value(1).run()
    at.button(key="launch_go").click().run()
    assert not at.exception and "queued 16 runs" in shown(at)
    exp = story_experiment(url, "gradient-regimes")
    assert exp is not None and exp.title == get_story("gradient-regimes").title
    assert exp.tags == ["story:gradient-regimes"]
