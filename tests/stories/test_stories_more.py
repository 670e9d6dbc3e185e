"""Reproduction stories 4-6 on real tiny runs, seeds 0 and 1 (see test_stories.py): U-Net long skips with
the prediction gallery, highway gates, and loss landscapes computed for real (5×5 grids on 64 samples).
Every verdict is recomputed here from the stored per-seed data. Verdict-logic tests fabricate metric or
landscape rows for runs that were never trained (three seeds per configuration); they are labelled so.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

from db.session import dispose_engine
from skipweb.data import get_dataset_info
from skipweb.stories import AGREES, CONTRADICTS, INCONCLUSIVE, STORIES
from skipweb.stories.base import CHANCE, ERROR_FLOOR, HIGHER, LOWER, MIN_SEEDS, NOISE_STDS
from skipweb.stories.numbers import num
from tests.stories.story_helpers import (
    FABRICATED_SEEDS,
    SEEDS,
    TINY,
    Side,
    app,
    build,
    digits,  # noqa: F401 - the shared real-training fixture
    fabricate,
    judged,
    new_db,
    per_seed,
    report,
    says,
    seeded,
    shown,
    train,
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("datasets")


# ---- 4. long skips ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def long_skips(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):
    tmp = tmp_path_factory.mktemp("unet")
    url = new_db(tmp)
    specs = STORIES["long-skips"].preset.specs(seeds=SEEDS, **TINY)
    ids = train(url, data_dir, "long-skips", specs, tmp / "ckpt")
    yield {"url": url, "ids": ids}
    dispose_engine(url)


def skip_of(run) -> str:
    return run.spec["options"]["skip"]


def test_long_skips_findings_match_the_runs(long_skips) -> None:
    from skipweb.stories.unet import TRIVIAL

    url, ids = long_skips["url"], long_skips["ids"]
    view = build(url, "long-skips")
    report("long-skips", view)
    miou = {k: Side(f"unet-3 (skip={k})", v) for k, v in per_seed(url, ids, "test/miou", skip_of).items()}
    acc = per_seed(url, ids, "test/pixel_acc", skip_of)
    classes = get_dataset_info("shapes").num_classes
    # a net predicting one class everywhere has mIoU = pixel accuracy / classes
    trivial = {k: abs(miou[k].mean - statistics.fmean(acc[k]) / classes) < TRIVIAL for k in miou}
    for f, kind in zip(view.findings, ("concat", "add"), strict=True):
        a, b = miou[kind], miou["none"]
        if trivial[kind] and trivial["none"]:
            assert f.verdict == INCONCLUSIVE
            assert f"(test mIoU {num(a.mean)} and {num(b.mean)} ≈ pixel accuracy ÷ {classes}" in f.text
        elif e := judged(f, a, b, HIGHER, chance=None):
            assert f.text.startswith(
                f"The U-Net with {kind} skips reached test mIoU {a.shown}; without skips {b.shown} {e.pair}: "
            ), f.text
    # one run per variant, the lowest seed, for the gallery
    assert [(name, skip_of(r), r.seed) for name, r in view.gallery] == [
        ("skip=concat", "concat", 0),
        ("skip=add", "add", 0),
        ("skip=none", "none", 0),
    ]
    assert all(Path(r.checkpoint_path, "last.pt").is_file() for _, r in view.gallery)


def test_long_skips_verdict_logic_with_fabricated_runs(tmp_path: Path) -> None:
    """VERDICT-LOGIC TEST (fabricated metrics, 3 seeds each): the skip-less U-Net scores clearly above the
    concat one and clearly below the add one → contradicts, agrees; then one class predicted everywhere."""
    url = new_db(tmp_path)
    specs = STORIES["long-skips"].preset.specs(seeds=FABRICATED_SEEDS, **TINY)  # concat, add, none × 3

    def findings(table, key=None):
        fabricate(url, "long-skips", specs, seeded(specs, table, key, by=lambda s: s.options["skip"]))
        return build(url, "long-skips").findings

    miou = {"concat": [0.39, 0.41, 0.43], "add": [0.60, 0.62, 0.64], "none": [0.53, 0.55, 0.57]}
    concat, add = findings(miou, "test/miou")
    assert concat.verdict == CONTRADICTS and concat.text == (
        "The U-Net with concat skips reached test mIoU 0.41 ± 0.02 (n=3); without skips 0.55 ± 0.02 (n=3) "
        "(unet-3 (skip=concat) 0.41 ± 0.02 (n=3) vs unet-3 (skip=none) 0.55 ± 0.02 (n=3); noise ±0.04): "
        "contrary to Ronneberger et al., the long skips lowered IoU."
    )
    assert add.verdict == AGREES and add.text.endswith(
        "(unet-3 (skip=add) 0.62 ± 0.02 (n=3) vs unet-3 (skip=none) 0.55 ± 0.02 (n=3); noise ±0.04): the long "
        "skips added 0.07 IoU."
    )
    # within the noise: add's mean is above none's, but by less than 2 × its spread
    add = findings({**miou, "add": [0.50, 0.60, 0.70]}, "test/miou")[1]
    assert add.verdict == INCONCLUSIVE and add.text.endswith(
        "(unet-3 (skip=add) 0.60 ± 0.10 (n=3) vs unet-3 (skip=none) 0.55 ± 0.02 (n=3); noise ±0.20): no "
        "difference beyond the noise."
    )
    # both predicting background only (mIoU = pixel accuracy / 4): nothing learned, nothing to compare
    one_class = {"concat": [{"test/miou": 0.22, "test/pixel_acc": 0.88}] * 3,
                 "none": [{"test/miou": 0.2175, "test/pixel_acc": 0.87}] * 3,
                 "add": [{"test/miou": v, "test/pixel_acc": 0.9} for v in miou["add"]]}  # fmt: skip
    concat, add = findings(one_class)
    assert concat.verdict == INCONCLUSIVE and concat.text == (
        "unet-3 (skip=concat) and unet-3 (skip=none) both predict essentially one class everywhere (test mIoU "
        "0.22 and 0.22 ≈ pixel accuracy ÷ 4 classes): not enough learned to compare. Train longer."
    )
    assert add.verdict == AGREES  # only one of the pair is trivial: still compared
    # the level of "finds the objects, guesses their class", computed from shapes' test masks
    notes = build(url, "long-skips").notes
    assert any(n.startswith("Only skip=add ends above 0.40, the test mIoU of a net that separates every object "
                            "from the background perfectly and guesses its class") for n in notes), notes  # fmt: skip


def test_figure_ground_level_equals_random_class_guesses() -> None:
    """evaluate.figure_ground_miou against a simulation: background kept, each object pixel given a random
    class, scored by the trainer's own segmentation_scores."""
    import torch

    from skipweb.data.offline import make_shapes
    from skipweb.training.evaluate import figure_ground_miou, segmentation_scores

    masks = make_shapes(200, seed=5).y
    g = torch.Generator().manual_seed(0)
    guessed = torch.where(masks > 0, torch.randint(1, 4, masks.shape, generator=g), 0)
    conf = torch.bincount(masks.flatten() * 4 + guessed.flatten(), minlength=16).view(4, 4).double()
    simulated = segmentation_scores(conf)["miou"]
    assert figure_ground_miou(masks, 4) == pytest.approx(simulated, abs=0.01)
    assert 0.3 < simulated < 0.5  # well above all-background (0.22), well below learning the classes


# ---- 5. gates vs clear highways ------------------------------------------------------------------------
def test_gates_findings_match_the_runs(digits) -> None:  # noqa: F811
    """On the shared digits runs: highway-20/56 and resnet-20/56, seeds 0 and 1."""
    from db.blocks import read_blocks

    url, recs = digits["url"], digits["recs"]
    view = build(url, "gates")
    report("gates", view)
    err = {k: Side(k, v) for k, v in per_seed(url, digits["ids"], "test/error").items()}
    at20, at56, trend, gate = view.findings
    for f, d in ((at20, 20), (at56, 56)):
        e = judged(f, err[f"resnet-{d}"], err[f"highway-{d}"], LOWER, chance=0.9)
        if e and not e.close:
            assert f.text.startswith(
                f"At {d} layers resnet-{d} ended with {says(e.sign, 'test error', f'highway-{d}', 'lower')} {e.pair}"
            )
    # the trend: resnet − highway should widen with depth (highway's error grows more)
    g = {(f, d): err[f"{f}-{d}"] for f in ("highway", "resnet") for d in (20, 56)}
    stuck = [f for f in ("highway", "resnet") if min(g[f, 20].mean, g[f, 56].mean) >= CHANCE * 0.9]
    blind = [d for d in (20, 56) if min(g["highway", d].mean, g["resnet", d].mean) >= CHANCE * 0.9]
    if stuck:  # a family that learned at neither depth: its change with depth is noise
        assert trend.verdict == INCONCLUSIVE
        assert trend.text.startswith(f"{stuck[0]}-20 and {stuck[0]}-56 both ended near chance level")
    elif blind:  # a depth at which neither family learned cannot anchor a trend either
        assert trend.verdict == INCONCLUSIVE
        assert trend.text.startswith(f"highway-{blind[0]} and resnet-{blind[0]} both ended near chance level")
    elif min(s.n for s in g.values()) < MIN_SEEDS:
        assert trend.verdict == INCONCLUSIVE and trend.missing_what == "seeds"
    else:
        dh, dr = g["highway", 56].mean - g["highway", 20].mean, g["resnet", 56].mean - g["resnet", 20].mean
        noise = max(NOISE_STDS * max(s.std for s in g.values()), ERROR_FLOOR)
        assert (f"highway's test error changed by {dh:+.3f} and resnet's by {dr:+.3f} (n={len(SEEDS)}+ seeds "
                f"each; noise ±{num(noise)})") in trend.text  # fmt: skip
        if abs(abs(dh - dr) - noise) > 1e-9:
            assert trend.verdict == (
                AGREES if dh - dr > noise else CONTRADICTS if dr - dh > noise else INCONCLUSIVE
            )
    # the gates: the lowest seed of highway-56 with gate probes
    run = recs["highway-56"][0]
    stats = read_blocks(url, [run.id], stats=["gate"])[run.id].stats["gate"]
    mean = float(np.nanmean(stats))
    assert 0 < mean < 1 and f"mean transform gate T over training was {num(mean)}" in gate.text
    assert gate.verdict == (AGREES if mean < 0.5 else CONTRADICTS)
    assert len(view.figures) == 2


def test_gates_verdict_logic_with_fabricated_runs(tmp_path: Path) -> None:
    """VERDICT-LOGIC TEST (fabricated metrics, 3 seeds each, no block probes): highway beats resnet clearly
    → contradicts; then the claimed trend, and a trend within the noise."""
    url = new_db(tmp_path)
    specs = STORIES["gates"].preset.specs(seeds=FABRICATED_SEEDS, **TINY)  # highway, resnet × 20, 56 × 3

    def findings(**table):
        fabricate(url, "gates", specs, seeded(specs, table, "test/error"))
        return build(url, "gates").findings

    base = {"highway-20": [0.08, 0.10, 0.12], "highway-56": [0.07, 0.09, 0.11], "resnet-20": [0.15, 0.17, 0.19],
            "resnet-56": [0.23, 0.25, 0.27]}  # fmt: skip
    at20, at56, trend, gate = findings(**base)
    assert at20.verdict == at56.verdict == trend.verdict == CONTRADICTS
    assert at56.text == (
        "At 56 layers resnet-56 ended with HIGHER test error than highway-56 (resnet-56 0.25 ± 0.02 (n=3) vs "
        "highway-56 0.09 ± 0.02 (n=3); noise ±0.04): contrary to He et al., the gated shortcuts did better."
    )
    assert trend.text == (
        "From 20 to 56 layers highway's test error changed by -0.010 and resnet's by +0.080 (n=3+ seeds each; "
        "noise ±0.04): contrary to He et al., depth hurt the identity net more."
    )
    assert gate.badge == "inconclusive (missing runs: highway-56 (no gate probes yet))"
    # the claim: resnet below highway at both depths, and highway degrading more with depth
    claim = {"highway-20": [0.13, 0.15, 0.17], "highway-56": [0.28, 0.30, 0.32], "resnet-20": [0.08, 0.10, 0.12],
             "resnet-56": [0.18, 0.20, 0.22]}  # fmt: skip
    at20, at56, trend, _ = findings(**claim)
    assert at20.verdict == at56.verdict == trend.verdict == AGREES
    assert at20.text.startswith("At 20 layers resnet-20 ended with lower test error than highway-20 (")
    assert trend.text.endswith("changed by +0.150 and resnet's by +0.100 (n=3+ seeds each; noise ±0.04): depth "
                               "hurt the gated net more.")  # fmt: skip
    # one noisy group widens the noise for the whole trend: 0.05 apart is then within it
    trend = findings(**{**claim, "highway-56": [0.20, 0.30, 0.40]})[2]
    assert trend.verdict == INCONCLUSIVE and trend.text.endswith("(n=3+ seeds each; noise ±0.20): no difference "
                                                                 "beyond the noise.")  # fmt: skip


# ---- 6. loss landscapes --------------------------------------------------------------------------------
def surface(url: str, run_id: int) -> tuple[int, float]:
    """(overflowed points, sharpness = mean finite loss − centre loss) of a run's stored 5×5 landscape."""
    from db.landscapes import latest_landscape

    z = np.array([[np.nan if v is None else v for v in row] for row in latest_landscape(url, run_id, "2d").loss],
                 dtype=float)  # fmt: skip
    assert z.shape == (5, 5)
    return int(np.isnan(z).sum()), float(np.nanmean(z) - z[2, 2])


def test_landscape_findings_match_the_surfaces(digits) -> None:  # noqa: F811
    """On the shared digits runs: plain-20 and resnet-20 have landscapes at both seeds, plain-56 at seed 0,
    resnet-56 none."""
    url, recs = digits["url"], digits["recs"]
    view = build(url, "landscapes")
    report("landscapes", view)
    at20, at56 = view.findings
    plain = [surface(url, r.id) for r in recs["plain-20"]]
    resnet = [surface(url, r.id) for r in recs["resnet-20"]]
    assert f"plain-20's loss rises by {num(plain[0][1])} on average over the grid" in at20.text
    assert f"resnet-20's loss rises by {num(resnet[0][1])}" in at20.text
    wins = sum(p > r for p, r in zip(plain, resnet, strict=True))  # per seed: overflow first, then sharpness
    assert at20.values["seeds"] == len(SEEDS) and at20.values["plain_sharper_in"] == wins
    assert at20.verdict == (AGREES if wins == len(SEEDS) else CONTRADICTS if wins == 0 else INCONCLUSIVE)
    missing = recs["resnet-56"][0]
    assert at56.verdict == INCONCLUSIVE and f"`skipweb landscape {missing.id}`" in at56.text
    assert at56.badge == f"inconclusive (missing landscapes: run {missing.id} (resnet-56, succeeded))"
    assert len(view.figures) == 3  # contours at 20, contours at 56 (plain only), interpolation lines


def test_landscape_verdict_logic_with_fabricated_surfaces(tmp_path: Path) -> None:
    """VERDICT-LOGIC TEST (fabricated landscapes, 3 seeds): a smooth bowl for the plain net and a rugged
    surface for the resnet in every seed → contradicts; seeds that disagree, a single seed with both
    landscapes, and surfaces over different ranges → inconclusive."""
    from db.landscapes import save_landscape

    url = new_db(tmp_path)
    specs = STORIES["landscapes"].preset.specs(seeds=FABRICATED_SEEDS, **TINY)  # plain, resnet × 20, 56 × 3
    xs = [-1.0, 0.0, 1.0]
    bowl = [[2.0, 1.0, 2.0], [1.0, 0.5, 1.0], [2.0, 1.0, 2.0]]  # mean 1.39, centre 0.5
    rugged = [[9.0, 0.1, 9.0], [4.0, 0.5, None], [9.0, 0.2, 9.0]]  # overflowed point, dips

    def findings(surfaces):
        """``surfaces[label]``: per seed, the loss grid (or None: no landscape) or (grid, range)."""
        ids = fabricate(url, "landscapes", specs, [{} for _ in specs])
        for rid, s in zip(ids, specs, strict=True):
            got = surfaces[s.label][s.seed]
            if got is not None:
                loss, rng = got if isinstance(got, tuple) else (got, 1.0)
                save_landscape(url, rid, "2d", grid=3, range_=rng, seed=0, subset=None, x=xs, y=xs, loss=loss)
        return build(url, "landscapes").findings

    at20, at56 = findings({"plain-20": [bowl] * 3, "resnet-20": [rugged] * 3,
                           "plain-56": [rugged, bowl, rugged], "resnet-56": [bowl, rugged, bowl]})  # fmt: skip
    assert at20.verdict == CONTRADICTS and at20.text == (
        "Contrary to Li et al., plain-20's loss rises by 0.89 on average over the grid (centre 0.50, edge 1.50; "
        "0% of points dip below their inner neighbour); resnet-20's loss rises by 4.60 on average over the grid "
        "(centre 0.50, edge 5.76, 1 grid point overflowed; 29% of points dip below their inner neighbour): the "
        "net without skips is not the sharper one in any of 3 seeds."
    )
    assert at56.verdict == INCONCLUSIVE and at56.text.startswith("plain-56's loss rises by 4.60")  # seed 0
    assert at56.text.endswith(": plain was the sharper in 2 of 3 seeds, so the seeds disagree.")
    assert at56.values["seeds"] == 3 and at56.values["plain_sharper_in"] == 2
    # every seed the textbook way round agrees; one seed with both landscapes is too few
    at20, at56 = findings({"plain-20": [rugged] * 3, "resnet-20": [bowl] * 3,
                           "plain-56": [rugged, rugged, None], "resnet-56": [None, bowl, None]})  # fmt: skip
    assert at20.verdict == AGREES and at20.text.endswith(
        ": the net without skips sits in the sharper region, in all 3 seeds."
    )
    assert at56.verdict == INCONCLUSIVE and at56.text.endswith(
        f"Only 1 seed has both landscapes: at least {MIN_SEEDS} are needed to tell the shape from the noise."
    )
    assert at56.badge == "inconclusive (missing landscapes: seeds of plain-56 and resnet-56)"
    # surfaces over different ranges are not compared
    at56 = findings({"plain-20": [rugged] * 3, "resnet-20": [bowl] * 3,
                     "plain-56": [bowl] * 3, "resnet-56": [(bowl, 0.5)] * 3})[1]  # fmt: skip
    assert at56.verdict == INCONCLUSIVE and "different ranges (±1 vs ±0.5)" in at56.text


def test_present_long_skips_gallery(long_skips, monkeypatch, tmp_path: Path) -> None:
    at = app(monkeypatch, long_skips["url"], tmp_path, story="long-skips")
    assert not at.exception and not at.error
    assert "Columns: image | truth | skip=concat | skip=add | skip=none." in shown(at)
    assert len(at.get("image")) == 4 * 5  # 4 test images × (image, truth, 3 predictions)
