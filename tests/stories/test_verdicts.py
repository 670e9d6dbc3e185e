"""The noise rules behind every story verdict (skipweb.stories.base): a difference of means counts only
beyond NOISE_STDS × the larger sample std over seeds and at least ERROR_FLOOR, and only with MIN_SEEDS
finished seeds on each side. Unit tests of Group / versus / too_few_seeds, then the degradation story
judging fabricated runs.

Every story-level test here is a VERDICT-LOGIC TEST (fabricated metrics): the runs never trained; their
final training errors are written directly, three seeds per configuration, to force each situation.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest

from skipweb.stories import AGREES, CONTRADICTS, INCONCLUSIVE, STORIES
from skipweb.stories.base import (
    ERROR_FLOOR,
    HIGHER,
    LOWER,
    MIN_SEEDS,
    NOISE_STDS,
    SAME,
    Group,
    too_few_seeds,
    versus,
)
from tests.stories.story_helpers import (
    FABRICATED_SEEDS,
    TINY,
    Side,
    build,
    expect,
    fabricate,
    judged,
    new_db,
    seeded,
)

KEY = "epoch/train_error"


def g(name: str, values: list[float], runs: int | None = None) -> Group:
    """A group of ``values`` (one per finished seed) out of ``runs`` runs (default: one per value)."""
    return Group(name, [object()] * (len(values) if runs is None else runs), list(values))


# ---- unit tests: Group, versus, too_few_seeds ----------------------------------------------------------
def test_group_mean_std_and_text() -> None:
    three = g("plain-56", [0.1, 0.2, 0.3])
    assert three.n == 3 and three.ok
    assert three.mean == pytest.approx(0.2) and three.std == pytest.approx(statistics.stdev([0.1, 0.2, 0.3]))
    assert three.std == pytest.approx(0.1)  # the sample std (n − 1), not the population one (0.082)
    assert three.shown == "0.20 ± 0.10 (n=3)"
    one = g("plain-56", [0.5])
    assert one.std == 0 and one.shown == "0.50 (n=1)"  # one seed: the spread is unknown, not shown as ± 0
    none = g("plain-56", [], runs=3)
    assert not none.ok and none.n == 0 and math.isnan(none.mean)


def test_noise_is_twice_the_larger_std_with_a_floor() -> None:
    wide, tight = g("a", [0.1, 0.2, 0.3]), g("b", [0.5, 0.5, 0.5])
    assert NOISE_STDS == 2 and ERROR_FLOOR == 0.01 and MIN_SEEDS == 2  # the rules these tests spell out
    assert versus(wide, tight).noise == pytest.approx(2 * 0.1)
    assert versus(tight, wide).noise == pytest.approx(2 * 0.1)  # the larger std, whichever side it is on
    flat = g("c", [0.5, 0.501, 0.502])  # std 0.001: 2 × std is below one percentage point
    assert versus(flat, tight).noise == ERROR_FLOOR
    assert versus(flat, tight, floor=0.05).noise == 0.05


def test_sign_and_verdict_of_each_situation() -> None:
    base = g("b", [0.10, 0.11, 0.12])  # std 0.01 → noise 0.02
    cases = [  # a, sign of a − b, verdict on "a is HIGHER", on "a is LOWER", on "a is no worse (LOWER or same)"
        ([0.20, 0.21, 0.22], HIGHER, AGREES, CONTRADICTS, CONTRADICTS),
        ([0.02, 0.03, 0.04], LOWER, CONTRADICTS, AGREES, AGREES),
        ([0.11, 0.12, 0.13], SAME, INCONCLUSIVE, INCONCLUSIVE, AGREES),  # 0.01 apart, noise 0.02
        ([0.05, 0.15, 0.25], SAME, INCONCLUSIVE, INCONCLUSIVE, AGREES),  # 0.04 apart, noise 0.2
    ]
    for values, sign, on_higher, on_lower, no_worse in cases:
        v = versus(g("a", values), base)
        assert v.sign == sign, values
        got = (v.verdict(HIGHER), v.verdict(LOWER), v.verdict(LOWER, or_same=True))
        assert got == (on_higher, on_lower, no_worse), values
        # the helpers' independent recomputation (used on the real runs) reaches the same verdicts
        a, b = Side("a", values), Side("b", base.values)
        assert expect(a, b, HIGHER).verdict == on_higher, values
        assert expect(a, b, LOWER, or_same=True).verdict == no_worse, values


def test_pair_text_and_values() -> None:
    v = versus(g("plain-56", [0.20, 0.22, 0.24]), g("plain-20", [0.09, 0.11, 0.13]))
    assert v.pair == "(plain-56 0.22 ± 0.02 (n=3) vs plain-20 0.11 ± 0.02 (n=3); noise ±0.04)"
    vals = v.values()
    assert vals["plain-56"] == pytest.approx(0.22) and vals["plain-20 std"] == pytest.approx(0.02)
    assert vals["plain-56 n"] == 3 and vals["difference"] == pytest.approx(0.11)
    assert vals["noise"] == pytest.approx(0.04)


def test_too_few_seeds_names_the_short_groups() -> None:
    full, two = g("plain-20", [0.09, 0.11, 0.13]), g("plain-56", [0.2, 0.3], runs=3)
    assert too_few_seeds("training error", [full, two]) is None  # 2 of 3 seeds is enough
    short = g("plain-56", [0.25], runs=3)
    f = too_few_seeds("training error", [short, full])
    assert f is not None and f.verdict == INCONCLUSIVE and f.missing_what == "seeds"
    assert f.missing == ("plain-56 (1 of 3 seeds)",)
    assert f.badge == "inconclusive (missing seeds: plain-56 (1 of 3 seeds))"
    assert f.text == (
        "Cannot compare training error against the noise yet (plain-56 0.25 (n=1) vs plain-20 0.11 ± 0.02 (n=3)): "
        "a difference needs at least 2 finished seeds of each to measure the spread; the story presets run "
        "seeds 0, 1, 2."
    )
    assert f.values["plain-56 n"] == 1 and f.values["plain-20"] == pytest.approx(0.11)
    lonely = too_few_seeds("training error", [g("x", [0.1], runs=1), g("y", [0.2], runs=1)])
    assert lonely is not None and lonely.missing == ("x (1 of 2 seeds)", "y (1 of 2 seeds)")


# ---- the degradation story on fabricated runs ----------------------------------------------------------
SHALLOW = {"plain-20": [0.09, 0.11, 0.13], "resnet-20": [0.09, 0.11, 0.13]}  # mean 0.11, std 0.02
DEEP = {"plain-56": [0.20, 0.22, 0.24], "resnet-56": [0.09, 0.11, 0.13]}  # what a test does not set


@pytest.fixture
def story(tmp_path: Path):
    """``story(table)``: VERDICT-LOGIC ONLY. Fabricates plain/resnet-20/56 × seeds 0-2 with the final
    training errors ``table[label][seed]`` (a dict passes through, None leaves the run queued) and returns
    the degradation story's findings: (plain-56 vs plain-20, resnet-56 vs resnet-20, resnet-56 vs plain-56)."""
    url = new_db(tmp_path)
    specs = STORIES["degradation"].preset.specs(seeds=FABRICATED_SEEDS, **TINY)

    def findings(table: dict) -> list:
        fabricate(url, "degradation", specs, seeded(specs, {**SHALLOW, **DEEP, **table}, KEY))
        return build(url, "degradation").findings

    return findings


def test_agrees_when_plain_56_is_clearly_above(story) -> None:
    plain = story({"plain-56": [0.20, 0.22, 0.24]})[0]
    assert plain.verdict == AGREES and plain.text == (
        "plain-56 ended with HIGHER training error than plain-20 (plain-56 0.22 ± 0.02 (n=3) vs plain-20 0.11 ± "
        "0.02 (n=3); noise ±0.04): the deeper plain net trains worse, as He et al. found."
    )
    e = judged(
        plain, Side("plain-56", [0.20, 0.22, 0.24]), Side("plain-20", SHALLOW["plain-20"]), HIGHER, chance=0.9
    )
    assert e is not None and e.sign == HIGHER and e.noise == pytest.approx(0.04)


def test_contradicts_when_plain_56_is_clearly_below(story) -> None:
    plain = story({"plain-56": [0.03, 0.05, 0.07]})[0]
    assert plain.verdict == CONTRADICTS and plain.text == (
        "plain-56 ended with LOWER training error than plain-20 (plain-56 0.05 ± 0.02 (n=3) vs plain-20 0.11 ± "
        "0.02 (n=3); noise ±0.04): no degradation in these runs, contrary to He et al."
    )


def test_within_noise_is_inconclusive_for_a_difference_and_agrees_for_no_worse(story) -> None:
    noisy = [0.10, 0.16, 0.22]  # mean 0.16, std 0.06: 0.05 above the shallow nets, noise 2 × 0.06 = 0.12
    plain, resnet, _ = story({"plain-56": noisy, "resnet-56": noisy})
    assert plain.verdict == INCONCLUSIVE and not plain.missing
    assert plain.text.startswith(
        "plain-56 ended with the same training error as plain-20 (within the noise) "
    )
    assert plain.text.endswith(
        "(plain-56 0.16 ± 0.06 (n=3) vs plain-20 0.11 ± 0.02 (n=3); noise ±0.12): no degradation beyond the "
        "noise in these runs."
    )
    assert resnet.verdict == AGREES and resnet.text.endswith(
        "(resnet-56 0.16 ± 0.06 (n=3) vs resnet-20 0.11 ± 0.02 (n=3); noise ±0.12): depth did not hurt."
    )
    assert ERROR_FLOOR < 0.05  # so it is the spread, not the floor, that hides the difference:
    tight = [
        0.15,
        0.16,
        0.17,
    ]  # the same mean with std 0.01: noise 2 × 0.02 (the shallow nets'), 0.05 clears it
    plain, resnet, _ = story({"plain-56": tight, "resnet-56": tight})
    assert plain.verdict == AGREES and "HIGHER" in plain.text
    assert resnet.verdict == CONTRADICTS and resnet.text.endswith(": depth hurt it, contrary to He et al.")


def test_near_zero_errors_are_the_same_without_a_ratio(story) -> None:
    near_zero = {"resnet-20": [0.0, 0.0, 0.0], "resnet-56": [0.004, 0.005, 0.006],
                 "plain-20": [0.0, 0.0, 0.0], "plain-56": [0.004, 0.005, 0.006]}  # fmt: skip
    plain, resnet, depth56 = story(near_zero)
    # 0.005 apart, 2 × std = 0.002: only the one-point floor (0.01) keeps it "the same"
    assert resnet.verdict == AGREES and resnet.text == (
        "resnet-56 ended with the same training error as resnet-20 (within the noise) (resnet-56 5.0e-3 ± "
        "1.0e-3 (n=3) vs resnet-20 0 ± 0 (n=3); noise ±0.01): depth did not hurt."
    )
    assert plain.verdict == INCONCLUSIVE and "noise ±0.01" in plain.text
    assert depth56.verdict == INCONCLUSIVE  # identical groups
    for f in (plain, resnet, depth56):
        assert "×" not in f.text and "inf" not in f.text and "nan" not in f.text, f.text
    # without the floor the same numbers would count as a difference: the floor is what decides here
    assert versus(g("a", near_zero["resnet-56"]), g("b", near_zero["resnet-20"]), floor=0).sign == HIGHER


def test_missing_seeds_make_a_comparison_inconclusive(story) -> None:
    one_of_three = [0.25, None, {KEY: 0.9, "_status": "failed"}]  # seed 1 still queued, seed 2 failed
    plain, resnet, depth56 = story({"plain-56": one_of_three, "resnet-56": [0.02, 0.03, 0.04]})
    assert (
        plain.verdict == INCONCLUSIVE
        and plain.badge == "inconclusive (missing seeds: plain-56 (1 of 3 seeds))"
    )
    assert plain.text.startswith("Cannot compare training error against the noise yet (plain-56 0.25 (n=1) vs "
                                 "plain-20 0.11 ± 0.02 (n=3))")  # fmt: skip
    assert depth56.badge == "inconclusive (missing seeds: plain-56 (1 of 3 seeds))"
    assert resnet.verdict == AGREES  # the resnet pair has all its seeds
    # two of three seeds are enough to measure a spread
    plain = story({"plain-56": [0.25, 0.27, None]})[0]
    assert (
        plain.verdict == AGREES and "(plain-56 0.26 ± 0.01 (n=2) vs plain-20 0.11 ± 0.02 (n=3)" in plain.text
    )


def test_the_original_bug_contradicts_only_beyond_the_noise(story) -> None:
    """resnet-56 at 0.35 against resnet-20 at 9.2e-4 once read as "380× the training error": a
    contradiction. With one seed at 0.98 and two near 0 that difference is within the seeds' spread."""
    tiny = [0.0009, 0.00092, 0.00094]  # 9.2e-4 ± 2.0e-5
    wide = [0.02, 0.05, 0.98]  # mean 0.35, std 0.55
    resnet = story({"resnet-20": tiny, "resnet-56": wide})[1]
    e = judged(resnet, Side("resnet-56", wide), Side("resnet-20", tiny), LOWER, or_same=True, chance=0.9)
    assert e is not None and e.sign == SAME and e.noise == pytest.approx(2 * statistics.stdev(wide))
    assert resnet.verdict == AGREES and resnet.text == (
        "resnet-56 ended with the same training error as resnet-20 (within the noise) (resnet-56 0.35 ± 0.55 "
        "(n=3) vs resnet-20 9.2e-4 ± 2.0e-5 (n=3); noise ±1.09): depth did not hurt."
    )
    # the same means with a tight spread clear the noise: now it is a contradiction, still without a ratio
    resnet = story({"resnet-20": tiny, "resnet-56": [0.33, 0.35, 0.37]})[1]
    assert resnet.verdict == CONTRADICTS and resnet.text == (
        "resnet-56 ended with HIGHER training error than resnet-20 (resnet-56 0.35 ± 0.02 (n=3) vs resnet-20 "
        "9.2e-4 ± 2.0e-5 (n=3); noise ±0.04): depth hurt it, contrary to He et al."
    )
    assert "×" not in resnet.text
