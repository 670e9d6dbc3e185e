"""Reproduction stories 4-6 on real tiny runs (see test_stories.py): U-Net long skips with the prediction
gallery, highway gates, and loss landscapes computed for real (5×5 grids on 64 samples). Verdict-logic
tests fabricate metric or landscape rows for runs that were never trained; they are labelled so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from story_helpers import LEARN, TINY, app, build, by_label, fabricate, judged, new_db, report, shown, train

from db import metrics, runs
from db.session import dispose_engine
from skipweb.stories import AGREES, CONTRADICTS, INCONCLUSIVE, STORIES
from skipweb.stories.base import num


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("datasets")


# ---- 4. long skips ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def long_skips(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):
    tmp = tmp_path_factory.mktemp("unet")
    url = new_db(tmp)
    ids = train(url, data_dir, "long-skips", STORIES["long-skips"].preset.specs(**TINY), tmp / "ckpt")
    yield {"url": url, "ids": ids}
    dispose_engine(url)


def test_long_skips_findings_match_the_runs(long_skips) -> None:
    url = long_skips["url"]
    view = build(url, "long-skips")
    report("long-skips", view)
    final = {r.spec["options"]["skip"]: metrics.latest(url, [r.id])[r.id]
             for r in (runs.get_run(url, i) for i in long_skips["ids"])}  # fmt: skip
    # 4 classes on shapes: a net predicting one class everywhere has mIoU = pixel accuracy / 4
    trivial = {k: abs(v["test/miou"] - v["test/pixel_acc"] / 4) < 0.005 for k, v in final.items()}
    for f, kind in zip(view.findings, ("concat", "add"), strict=True):
        a, b = final[kind]["test/miou"], final["none"]["test/miou"]
        if trivial[kind] and trivial["none"]:
            assert (
                f.verdict == INCONCLUSIVE
                and f"(test mIoU {num(a)} and {num(b)} ≈ pixel accuracy ÷ 4" in f.text
            )
        elif a > b:
            assert f.verdict == AGREES and f"mIoU {num(a)}; without skips {num(b)}" in f.text
        else:
            assert f.verdict == CONTRADICTS and f"({num(a)} vs {num(b)})" in f.text
    assert [(name, r.spec["options"]["skip"]) for name, r in view.gallery] == [
        ("skip=concat", "concat"),
        ("skip=add", "add"),
        ("skip=none", "none"),
    ]
    assert all(Path(r.checkpoint_path, "last.pt").is_file() for _, r in view.gallery)


def test_long_skips_verdict_logic_with_fabricated_runs(tmp_path: Path) -> None:
    """VERDICT-LOGIC TEST (fabricated metrics): the skip-less U-Net scores best → both contradict."""
    url = new_db(tmp_path)
    specs = STORIES["long-skips"].preset.specs(**TINY)  # concat, add, none
    ids = fabricate(url, "long-skips", specs, [{"test/miou": v} for v in (0.41, 0.62, 0.55)])
    concat, add = build(url, "long-skips").findings
    assert (
        concat.verdict == CONTRADICTS
        and "with concat skips reached no higher test mIoU than without skips (0.41 vs 0.55)" in concat.text
    )
    assert add.verdict == AGREES and add.text.startswith(
        "With add skips the U-Net reached test mIoU 0.62; without skips 0.55"
    )
    # both predicting background only (mIoU = pixel accuracy / 4): nothing learned, nothing to compare
    metrics.write_batch(
        url, ids[0], [("test/pixel_acc", 1, 1.0, 0.88, 0.0), ("test/miou", 2, 2.0, 0.22, 0.0)]
    )
    metrics.write_batch(
        url, ids[2], [("test/pixel_acc", 1, 1.0, 0.87, 0.0), ("test/miou", 2, 2.0, 0.2175, 0.0)]
    )
    concat = build(url, "long-skips").findings[0]
    assert concat.verdict == INCONCLUSIVE and concat.text.startswith(
        "unet-3 (skip=concat) and unet-3 (skip=none) both predict essentially one class everywhere "
        "(test mIoU 0.22 and 0.22 ≈ pixel accuracy ÷ 4 classes)"
    )


# ---- 5. gates vs clear highways ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):
    tmp = tmp_path_factory.mktemp("highway")
    url = new_db(tmp)
    ids = train(url, data_dir, "gates", STORIES["gates"].preset.specs(**LEARN))
    yield {"url": url, "ids": ids}
    dispose_engine(url)


def test_gates_findings_match_the_runs(gates) -> None:
    from db.blocks import read_blocks

    url = gates["url"]
    view = build(url, "gates")
    report("gates", view)
    recs = by_label(url, gates["ids"])
    err = {k: metrics.latest(url, [r.id])[r.id]["test/error"] for k, r in recs.items()}
    at20, at56, trend, gate = view.findings
    for f, d in ((at20, 20), (at56, 56)):
        a, b = err[f"resnet-{d}"], err[f"highway-{d}"]
        if judged(f, a, b, a < b, chance=0.9, pair=False):  # the sentence names the winner's number first
            assert f"({num(a)} vs {num(b)})" in f.text if a < b else f"({num(b)} vs {num(a)})" in f.text
    dh, dr = err["highway-56"] - err["highway-20"], err["resnet-56"] - err["resnet-20"]
    if trend.verdict != INCONCLUSIVE:
        assert f"changed by {dh:+.2f} and resnet's by {dr:+.2f}" in trend.text
        assert trend.verdict == (AGREES if dh > dr else CONTRADICTS)
    else:
        # a family that learned at neither depth: its change with depth is noise
        stuck = [f for f in ("highway", "resnet") if min(err[f"{f}-20"], err[f"{f}-56"]) >= 0.81]
        assert stuck and trend.text.startswith(
            f"{stuck[0]}-20 and {stuck[0]}-56 both ended near chance level"
        )
    g = read_blocks(url, [recs["highway-56"].id], stats=["gate"])[recs["highway-56"].id].stats["gate"]
    mean = float(np.nanmean(g))
    assert 0 < mean < 1 and f"mean transform gate T over training was {num(mean)}" in gate.text
    assert gate.verdict == (AGREES if mean < 0.5 else CONTRADICTS)
    assert len(view.figures) == 2


def test_gates_verdict_logic_with_fabricated_runs(tmp_path: Path) -> None:
    """VERDICT-LOGIC TEST (fabricated metrics, no block probes): highway beats resnet → contradicts."""
    url = new_db(tmp_path)
    specs = STORIES["gates"].preset.specs(**TINY)  # highway-20, highway-56, resnet-20, resnet-56
    fabricate(url, "gates", specs, [{"test/error": v} for v in (0.10, 0.09, 0.12, 0.20)])
    at20, at56, trend, gate = build(url, "gates").findings
    assert at20.verdict == at56.verdict == trend.verdict == CONTRADICTS
    assert (
        "highway-56's gated shortcuts ended with no higher test error than resnet-56's identity (0.09 vs 0.20)"
        in at56.text
    )
    assert "highway's test error changed by -0.01 and resnet's by +0.08" in trend.text
    assert gate.badge == "inconclusive (missing runs: highway-56 (no gate probes yet))"


# ---- 6. loss landscapes --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def landscapes(tmp_path_factory: pytest.TempPathFactory):
    """The preset trained tiny; 5×5 landscapes for plain-20, resnet-20 and plain-56 (not resnet-56)."""
    from skipweb.cli.landscape import compute_and_store
    from skipweb.settings import Settings

    tmp = tmp_path_factory.mktemp("landscapes")
    url = new_db(tmp)
    settings = Settings(data_dir=tmp, database_url=url)
    ids = train(
        url, settings.datasets_dir, "landscapes", STORIES["landscapes"].preset.specs(**TINY), tmp / "ckpt"
    )
    recs = by_label(url, ids)
    for label in ("plain-20", "resnet-20", "plain-56"):
        compute_and_store(settings, recs[label].id, grid=5, range_=1.0, subset=64, seed=0)
    yield {"url": url, "recs": recs}
    dispose_engine(url)


def sharpness(url: str, run_id: int) -> float:
    from db.landscapes import latest_landscape

    z = np.array(latest_landscape(url, run_id, "2d").loss, dtype=float)
    return float(np.nanmean(z) - z[2, 2])


def test_landscape_findings_match_the_surfaces(landscapes) -> None:
    url, recs = landscapes["url"], landscapes["recs"]
    view = build(url, "landscapes")
    report("landscapes", view)
    at20, at56 = view.findings
    sp, sr = sharpness(url, recs["plain-20"].id), sharpness(url, recs["resnet-20"].id)
    assert f"plain-20's loss rises by {num(sp)} on average over the grid" in at20.text
    assert f"resnet-20's loss rises by {num(sr)}" in at20.text
    assert at20.verdict == (AGREES if sp > sr else CONTRADICTS)
    missing = recs["resnet-56"]
    assert at56.verdict == INCONCLUSIVE and f"`skipweb landscape {missing.id}`" in at56.text
    assert at56.badge == f"inconclusive (missing landscapes: run {missing.id} (resnet-56, succeeded))"
    assert len(view.figures) == 3  # contours at 20, contours at 56 (plain only), interpolation lines


def test_landscape_verdict_logic_with_fabricated_surfaces(tmp_path: Path) -> None:
    """VERDICT-LOGIC TEST (fabricated landscapes): a smooth bowl for the plain net and a rugged surface
    for the resnet → contradicts; surfaces over different ranges → inconclusive."""
    from db.landscapes import save_landscape

    url = new_db(tmp_path)
    specs = STORIES["landscapes"].preset.specs(**TINY)  # plain-20, plain-56, resnet-20, resnet-56
    ids = fabricate(url, "landscapes", specs, [{} for _ in specs])
    xs = [-1.0, 0.0, 1.0]
    bowl = [[2.0, 1.0, 2.0], [1.0, 0.5, 1.0], [2.0, 1.0, 2.0]]  # mean 1.39, centre 0.5
    rugged = [[9.0, 0.1, 9.0], [4.0, 0.5, None], [9.0, 0.2, 9.0]]  # overflowed point, dips
    for rid, loss, rng in zip(ids, (bowl, bowl, rugged, bowl), (1.0, 1.0, 1.0, 0.5), strict=True):
        save_landscape(url, rid, "2d", grid=3, range_=rng, seed=0, subset=None, x=xs, y=xs, loss=loss)
    at20, at56 = build(url, "landscapes").findings
    assert at20.verdict == CONTRADICTS and at20.text.startswith(
        "Contrary to Li et al., plain-20's loss rises by 0.89"
    )
    assert "1 grid point overflowed; 29% of points dip below their inner neighbour" in at20.text
    assert at56.verdict == INCONCLUSIVE and "different ranges (±1 vs ±0.5)" in at56.text


def test_present_long_skips_gallery(long_skips, monkeypatch, tmp_path: Path) -> None:
    at = app(monkeypatch, long_skips["url"], tmp_path, story="long-skips")
    assert not at.exception and not at.error
    assert "Columns: image | truth | skip=concat | skip=add | skip=none." in shown(at)
    assert len(at.get("image")) == 4 * 5  # 4 test images × (image, truth, 3 predictions)
