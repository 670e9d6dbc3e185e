"""The six reproduction stories on real tiny runs (stories 1-3 here, 4-6 in test_stories_more.py): each
story's preset is trained (1 epoch, CPU, small subsets, seeds 0 and 1) into a SQLite database, the story
builds, and every number in its sentences and every verdict is recomputed here from the stored per-seed
data (story_helpers.judged: mean ± std over seeds against the noise). Verdict-logic tests write fabricated
metric or probe rows for runs that were never trained (three seeds per configuration), to force an
agreement, a contradiction or an inconclusive result on purpose; they are labelled so. The Launch
presets and the Present page's story view: test_stories_ui.py. The noise rules themselves: test_verdicts.py.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

from db import blocks, experiments, metrics, runs
from db.session import dispose_engine
from skipweb.grid import row
from skipweb.stories import AGREES, CONTRADICTS, INCONCLUSIVE, STORIES, get_story
from skipweb.stories.base import HIGHER, LOWER
from skipweb.stories.numbers import num, times
from tests.stories.story_helpers import (
    FABRICATED_SEEDS,
    SEEDS,
    TINY,
    Side,
    build,
    digits,  # noqa: F401 - the shared real-training fixture
    fabricate,
    judged,
    new_db,
    per_seed,
    report,
    says,
    seeded,
    train,
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("datasets")


# ---- the registry --------------------------------------------------------------------------------------
def test_six_stories_with_valid_presets() -> None:
    from skipweb.recipes import recipe_for

    assert list(STORIES) == ["degradation", "gradient-regimes", "add-vs-concat", "long-skips", "gates",
                             "landscapes"]  # fmt: skip
    for story in STORIES.values():
        p = story.preset
        assert story.papers and all(url.startswith("https://") for _, url in story.papers)
        assert p.seeds == (0, 1, 2), story.key  # a story compares means against the spread over 3 seeds
        specs = p.specs()  # every combination validates
        assert sorted({s.seed for s in specs}) == [0, 1, 2] and len(specs) % 3 == 0, story.key
        # the recipe is the dataset's default with the preset's overrides, and the specs train with it
        training = {**recipe_for(p.dataset).fields(), **p.recipe}
        assert p.training() == training, story.key
        assert all(getattr(s, k) == v for s in specs for k, v in training.items()), story.key
        assert [s.seed for s in p.specs(seeds=(4,))] == [4] * (len(specs) // 3)
    assert STORIES["gradient-regimes"].preset.training()["epochs"] == 1  # reads step 1 only
    with pytest.raises(KeyError, match="valid stories: degradation, gradient-regimes"):
        get_story("nope")


# ---- 1. degradation ------------------------------------------------------------------------------------
def test_degradation_findings_match_the_runs(digits) -> None:  # noqa: F811
    url = digits["url"]
    view = build(url, "degradation")
    report("degradation", view)
    err = {k: Side(k, v) for k, v in per_seed(url, digits["ids"], "epoch/train_error").items()}
    plain, resnet, depth56 = view.findings
    e = judged(plain, err["plain-56"], err["plain-20"], HIGHER, chance=0.9)
    if e and not e.close:
        assert plain.text.startswith(
            f"plain-56 ended with {says(e.sign, 'training error', 'plain-20')} {e.pair}: "
        )
    e = judged(resnet, err["resnet-56"], err["resnet-20"], LOWER, or_same=True, chance=0.9)
    if e and not e.close:
        assert resnet.text.startswith(
            f"resnet-56 ended with {says(e.sign, 'training error', 'resnet-20')} {e.pair}"
        )
    e = judged(depth56, err["resnet-56"], err["plain-56"], LOWER, chance=0.9)
    if e and not e.close:
        assert depth56.text.startswith(
            f"At 56 layers, resnet-56 ended with {says(e.sign, 'training error', 'plain-56', 'lower')} {e.pair}"
        )
    assert len(view.figures) == 2


def test_degradation_verdict_logic_with_fabricated_runs(tmp_path: Path) -> None:
    """VERDICT-LOGIC TEST (fabricated metrics, 3 seeds each): plain-56 ends clearly BELOW plain-20 →
    contradicts; then the textbook case, a shallower net at exactly 0, chance level, missing runs."""
    url = new_db(tmp_path)
    specs = STORIES["degradation"].preset.specs(seeds=FABRICATED_SEEDS, **TINY)  # plain, resnet × 20, 56 × 3

    def view(**table):
        fabricate(url, "degradation", specs, seeded(specs, table, "epoch/train_error"))
        return build(url, "degradation")

    base = {"plain-20": [0.18, 0.20, 0.22], "plain-56": [0.10, 0.12, 0.14], "resnet-20": [0.08, 0.10, 0.12],
            "resnet-56": [0.03, 0.05, 0.07]}  # fmt: skip
    plain, resnet, depth56 = view(**base).findings
    assert plain.verdict == CONTRADICTS and plain.text == (
        "plain-56 ended with LOWER training error than plain-20 (plain-56 0.12 ± 0.02 (n=3) vs plain-20 0.20 ± "
        "0.02 (n=3); noise ±0.04): no degradation in these runs, contrary to He et al."
    )
    assert plain.values["plain-56"] == pytest.approx(0.12) and plain.values["plain-20 n"] == 3
    assert resnet.verdict == AGREES and resnet.text == (
        "resnet-56 ended with LOWER training error than resnet-20 (resnet-56 0.05 ± 0.02 (n=3) vs resnet-20 "
        "0.10 ± 0.02 (n=3); noise ±0.04): depth did not hurt."
    )
    assert depth56.verdict == AGREES and depth56.text == (
        "At 56 layers, resnet-56 ended with lower training error than plain-56 (resnet-56 0.05 ± 0.02 (n=3) vs "
        "plain-56 0.12 ± 0.02 (n=3); noise ±0.04): the shortcuts fixed what depth broke."
    )
    # the textbook case agrees
    plain = view(**{**base, "plain-56": [0.28, 0.30, 0.32]}).findings[0]
    assert plain.verdict == AGREES and plain.text == (
        "plain-56 ended with HIGHER training error than plain-20 (plain-56 0.30 ± 0.02 (n=3) vs plain-20 0.20 ± "
        "0.02 (n=3); noise ±0.04): the deeper plain net trains worse, as He et al. found."
    )
    # a shallower net at exactly 0 training error: no "inf×" ratio, the difference is measured as it is
    resnet = view(**{**base, "resnet-20": [0.0, 0.0, 0.0]}).findings[1]
    assert resnet.verdict == CONTRADICTS and resnet.text == (
        "resnet-56 ended with HIGHER training error than resnet-20 (resnet-56 0.05 ± 0.02 (n=3) vs resnet-20 "
        "0 ± 0 (n=3); noise ±0.04): depth hurt it, contrary to He et al."
    )
    # both at chance level (10 digits: guessing errs 0.90): nothing learned, nothing to compare
    plain = view(**{**base, "plain-20": [0.89] * 3, "plain-56": [0.90, 0.91, 0.92]}).findings[0]
    assert plain.verdict == INCONCLUSIVE and plain.text == (
        "plain-56 and plain-20 both ended near chance level (training error 0.91 and 0.89; guessing gives "
        "0.90 with 10 classes): not enough learned to compare. Train longer."
    )
    # a missing run and an unfinished one: inconclusive, named, no crash
    exp = experiments.create_experiment(url, "partial", tags=["story:degradation"])
    runs.add_runs(url, exp, [row(specs[0]), row(specs[-1])])  # plain-20 seed 0, resnet-56 seed 2
    partial = build(url, "degradation")
    assert all(f.verdict == INCONCLUSIVE for f in partial.findings)
    assert partial.findings[0].badge == "inconclusive (missing runs: plain-56, plain-20 (queued))"
    assert get_story("degradation").build(url, []).findings[2].missing == ("resnet-56", "plain-56")


# ---- 2. gradient regimes -------------------------------------------------------------------------------
REGIMES = (("batch", "kaiming"), ("none", "small"))  # the two the story reads; the other two are controls


@pytest.fixture(scope="module")
def gradient_regimes(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):
    """The preset's two regimes the story reads (BatchNorm+kaiming, none+small) at 56 and 110 layers."""
    tmp = tmp_path_factory.mktemp("gradients")
    url = new_db(tmp)
    specs = [s for s in STORIES["gradient-regimes"].preset.specs(seeds=SEEDS, **TINY)
             if (s.options["norm"], s.options["init"]) in REGIMES]  # fmt: skip
    assert len(specs) == 8 * len(SEEDS)
    ids = train(url, data_dir, "gradient-regimes", specs)
    yield {"url": url, "ids": ids}
    dispose_engine(url)


def spread(ratios: list[float]) -> str:
    return f"({times(min(ratios))}–{times(max(ratios))} over {len(ratios)} seeds)"


def ratio(a: float, b: float) -> float:
    """a / b; inf when only b is 0 (e.g. an underflowed last layer), nan when both are."""
    return a / b if b else (np.nan if a == 0 else np.inf)


def apart(above: list[float], below: list[float]) -> bool:
    """Every seed of ``above`` beyond every seed of ``below``."""
    return min(above) > max(below)


def test_gradient_regimes_findings_match_step_one(gradient_regimes) -> None:
    from skipweb.stories.gradients import VANISHED

    url, ids = gradient_regimes["url"], gradient_regimes["ids"]
    view = build(url, "gradient-regimes")
    report("gradient-regimes", view)
    grads = metrics.read_grad(url, ids, steps=[1])
    first: dict[tuple, list[tuple[float, float]]] = {}  # (family, depth, norm) → [(first, last) by seed]
    recs = sorted((runs.get_run(url, i) for i in ids), key=lambda r: r.seed)
    for r in recs:
        steps, m = grads[r.id]
        assert list(steps) == [1]
        first.setdefault((r.family, r.depth, r.spec["options"]["norm"]), []).append(
            (float(m[0, 0]), float(m[0, -1]))
        )
    assert all(len(v) == len(SEEDS) for v in first.values())
    ratios = {k: [ratio(a, b) for a, b in v] for k, v in first.items()}
    bn56, bn110, trend, small56, small110, skip56, skip110 = view.findings
    for f, depth in ((bn56, 56), (bn110, 110)):
        p, res = ratios["plain", depth, "batch"], ratios["resnet", depth, "batch"]
        assert (f"plain-{depth}'s first-layer gradient is {times(statistics.median(p))} its last layer's "
                f"{spread(p)}; resnet-{depth}'s is {times(statistics.median(res))} {spread(res)}") in f.text  # fmt: skip
        expected = (AGREES if min(p) > 1 and apart(p, res) else
                    CONTRADICTS if max(p) <= 1 or apart(res, p) else INCONCLUSIVE)  # fmt: skip
        assert f.verdict == expected, f.text
    lo, hi = ratios["plain", 56, "batch"], ratios["plain", 110, "batch"]
    assert (f"from {times(statistics.median(lo))} {spread(lo)} at 56 layers to {times(statistics.median(hi))} "
            f"{spread(hi)} at 110") in trend.text  # fmt: skip
    assert trend.verdict == (AGREES if apart(hi, lo) else CONTRADICTS if apart(lo, hi) else INCONCLUSIVE)
    for f, depth in ((small56, 56), (small110, 110)):
        p = [a for a, _ in first["plain", depth, "none"]]
        res = [a for a, _ in first["resnet", depth, "none"]]
        assert f"plain-{depth}'s first-layer gradient at initialisation is {num(p[0])}" in f.text
        assert (
            f"resnet-{depth}'s first-layer gradient is {num(res[0])}" in f.text
            or f"resnet-{depth}'s ({num(res[0])})" in f.text
        )
        worst = max(ratio(a, b) for a in p for b in res)
        rel = ratio(statistics.median(p), statistics.median(res))
        assert f.verdict == (AGREES if worst < VANISHED else INCONCLUSIVE if rel < VANISHED else CONTRADICTS)
    # the block probes: how many of resnet's blocks get more gradient via the skip than via the branch
    series = blocks.read_blocks(url, ids)
    for f, depth in ((skip56, 56), (skip110, 110)):
        r = next(r for r in recs  # the lowest seed
                 if (r.family, r.depth, r.spec["options"]["norm"]) == ("resnet", depth, "batch"))  # fmt: skip
        s = series[r.id]
        assert s.steps[0] == 1
        share = s.ratio()[0]
        share = share[np.isfinite(share)]
        more = int((share > 1).sum())
        assert (
            f"in {more} of {len(share)} blocks (median skip/branch ratio {times(float(np.median(share)))}"
            in f.text
        )
        assert f.verdict == (AGREES if more > len(share) / 2 else CONTRADICTS)
    assert len(view.figures) == 3


def test_gradient_regimes_verdict_logic_with_fabricated_probes(tmp_path: Path) -> None:
    """VERDICT-LOGIC TEST (fabricated probe rows, 3 seeds each): a plain net whose step-1 profile is flatter
    than the ResNet's in every seed contradicts the explosion claim; one whose first layer is ~1e-9 of the
    ResNet's in every seed agrees with vanishing; seeds that disagree are inconclusive."""
    url = new_db(tmp_path)
    specs = [s for s in STORIES["gradient-regimes"].preset.specs(seeds=FABRICATED_SEEDS, **TINY)
             if (s.options["norm"], s.options["init"]) in REGIMES
             and (s.depth == 56 or s.options["norm"] == "batch")]  # fmt: skip
    assert len(specs) == 6 * 3  # 110 layers: BatchNorm only, so the small-init regime there lacks runs

    def findings(profiles):
        probes = [[(1, 0.1, profiles[s.family, s.depth, s.options["norm"]][s.seed], [1.0] * 3, [0.1] * 3)]
                  for s in specs]  # fmt: skip
        fabricate(url, "gradient-regimes", specs, [{} for _ in specs], probes)
        return build(url, "gradient-regimes").findings

    profiles = {
        ("plain", 56, "batch"): [[0.4, 1.0, 1.0], [0.5, 1.0, 1.0], [0.6, 1.0, 1.0]],  # first/last 0.4-0.6
        ("resnet", 56, "batch"): [[3.0, 1.0, 2.0], [4.0, 1.0, 2.0], [5.0, 1.0, 2.0]],  # 1.5-2.5
        ("plain", 110, "batch"): [[5.0, 1.0, 1.0], [6.0, 1.0, 1.0], [7.0, 1.0, 1.0]],  # 5-7
        ("resnet", 110, "batch"): [[3.0, 1.0, 2.0], [4.0, 1.0, 2.0], [5.0, 1.0, 2.0]],
        ("plain", 56, "none"): [[1e-12, 1e-6, 1e-3], [2e-12, 1e-6, 1e-3], [3e-12, 1e-6, 1e-3]],
        ("resnet", 56, "none"): [[1e-3, 1e-3, 1e-3]] * 3,
    }  # fmt: skip
    bn56, bn110, trend, small56, small110, skip56, _ = findings(profiles)
    assert skip56.verdict == INCONCLUSIVE and "no block probes" in skip56.text  # fabricated: no block rows
    assert bn56.verdict == CONTRADICTS and bn56.text == (
        "Contrary to the expected explosion, with BatchNorm, at initialisation plain-56's first-layer gradient "
        "is 0.5× its last layer's (0.4×–0.6× over 3 seeds); resnet-56's is 2.0× (1.5×–2.5× over 3 seeds)."
    )
    assert bn110.verdict == AGREES and bn110.text == (
        "With BatchNorm, at initialisation plain-110's first-layer gradient is 6.0× its last layer's "
        "(5.0×–7.0× over 3 seeds); resnet-110's is 2.0× (1.5×–2.5× over 3 seeds): the plain net's early-layer "
        "gradients grew, in every seed."
    )
    assert trend.verdict == AGREES and trend.text == (
        "plain's first/last gradient ratio at initialisation goes from 0.5× (0.4×–0.6× over 3 seeds) at 56 "
        "layers to 6.0× (5.0×–7.0× over 3 seeds) at 110: the explosion grows with depth, in every seed."
    )
    assert small56.verdict == AGREES and small56.text == (
        "Without normalisation and with N(0, 0.01) weights, plain-56's first-layer gradient at initialisation "
        "is 1.0e-12 (2.0e-9× its last layer's), 2.0e-9× resnet-56's (1.0e-3): the gradient vanished on its way "
        "down, in all 3 seeds."
    )
    assert small110.verdict == INCONCLUSIVE and "plain-110 (norm=none, init=small)" in small110.missing
    # the seeds disagree: one plain seed explodes less than the ResNet's, one plain seed does not vanish
    mixed = {**profiles,
             ("plain", 56, "batch"): [[0.5, 1.0, 1.0], [3.0, 1.0, 1.0], [4.0, 1.0, 1.0]],
             ("plain", 110, "batch"): [[2.0, 1.0, 1.0], [6.0, 1.0, 1.0], [7.0, 1.0, 1.0]],
             ("plain", 56, "none"): [[1e-12, 1e-6, 1e-3], [1e-12, 1e-6, 1e-3], [1e-4, 1e-6, 1e-3]]}  # fmt: skip
    bn56, _, trend, small56, *_ = findings(mixed)
    assert bn56.verdict == INCONCLUSIVE and bn56.text.endswith(
        "(0.5×–4.0× over 3 seeds); resnet-56's is 2.0× (1.5×–2.5× over 3 seeds): the seeds disagree, so the "
        "difference is within the noise."
    )
    assert trend.verdict == INCONCLUSIVE and trend.text.startswith("Plain's first/last gradient ratio")
    assert trend.text.endswith("the seeds overlap, so no trend beyond the noise.")
    assert small56.verdict == INCONCLUSIVE and small56.text.endswith(
        ": vanished in some seeds but not all, so not beyond the noise."
    )


# ---- 3. addition vs concatenation ------------------------------------------------------------------------
def test_add_vs_concat_findings_match_the_runs(digits) -> None:  # noqa: F811
    """On the shared digits runs (the preset's nets and dataset, one epoch)."""
    from skipweb.stories.densenet import MATCH
    from skipweb.stories.numbers import count

    url, recs = digits["url"], digits["recs"]
    view = build(url, "add-vs-concat")
    report("add-vs-concat", view)
    err = {k: Side(k, v) for k, v in per_seed(url, digits["ids"], "test/error").items()}
    params = {k: v[0].params for k, v in recs.items()}
    assert len(view.findings) == 2
    for f, dense in zip(view.findings, ("densenet-13", "densenet-22"), strict=True):
        pd_ = params[dense]
        res = min(("resnet-8", "resnet-20"), key=lambda k: max(params[k] / pd_, pd_ / params[k]))
        pr = params[res]
        unmatched = max(pr / pd_, pd_ / pr) > MATCH
        e = judged(f, err[dense], err[res], LOWER, chance=0.9, override=INCONCLUSIVE if unmatched else None)
        if e:
            assert f.text.startswith(
                f"{dense} ({count(pd_)} params) ended with test error {e.a.shown}; {res} ({count(pr)}, the "
                f"closest ResNet in size) {e.b.shown}; noise ±{num(e.noise)}"
            ), f.text
            assert ("not a matched comparison" in f.text) == unmatched
    assert view.figures


def test_add_vs_concat_verdict_logic_with_fabricated_runs(tmp_path: Path) -> None:
    """VERDICT-LOGIC TEST (fabricated metrics and parameter counts, 3 seeds each)."""
    url = new_db(tmp_path)
    # resnet-8/20, densenet-13/22 × seeds 0-2; densenet-22 given 1M parameters: no ResNet of its size
    specs = STORIES["add-vs-concat"].preset.specs(seeds=FABRICATED_SEEDS, **TINY)
    size = {"resnet-8": 75_000, "resnet-20": 270_000, "densenet-13": 75_000, "densenet-22": 1_000_000}

    def findings(errors):
        table = {k: [{"test/error": e, "_params": size[k]} for e in v] for k, v in errors.items()}
        fabricate(url, "add-vs-concat", specs, seeded(specs, table))
        return build(url, "add-vs-concat").findings

    errors = {"resnet-8": [0.08, 0.10, 0.12], "resnet-20": [0.03, 0.05, 0.07], "densenet-13": [0.18, 0.20, 0.22],
              "densenet-22": [0.02, 0.04, 0.06]}  # fmt: skip
    small, large = findings(errors)
    assert small.verdict == CONTRADICTS and small.text == (
        "densenet-13 (75k params) ended with test error 0.20 ± 0.02 (n=3); resnet-8 (75k, the closest ResNet "
        "in size) 0.10 ± 0.02 (n=3); noise ±0.04: contrary to Huang et al., concatenation did worse at a matched "
        "size."
    )
    assert small.values["densenet_params"] == 75_000 and small.values["resnet_params"] == 75_000
    assert large.verdict == INCONCLUSIVE and large.text == (
        "densenet-22 (1M params) ended with test error 0.04 ± 0.02 (n=3); resnet-20 (270k, the closest ResNet in "
        "size) 0.05 ± 0.02 (n=3); noise ±0.04, but their sizes differ 3.7×: not a matched comparison."
    )
    small = findings({**errors, "densenet-13": [0.02, 0.04, 0.06]})[0]
    assert small.verdict == AGREES and small.text.endswith(
        "0.04 ± 0.02 (n=3); resnet-8 (75k, the closest ResNet in size) 0.10 ± 0.02 (n=3); noise ±0.04: "
        "concatenation did better at a matched size."
    )
    small = findings({**errors, "densenet-13": [0.02, 0.10, 0.18]})[0]  # mean 0.10 ± 0.08: within the noise
    assert small.verdict == INCONCLUSIVE and small.text.endswith(
        "0.10 ± 0.08 (n=3); resnet-8 (75k, the closest ResNet in size) 0.10 ± 0.02 (n=3); noise ±0.16: no "
        "difference beyond the noise at a matched size."
    )
