"""Presenting a story (issue 24): the verdict beside its sentence, slide mode, links pinned to an experiment,
and the deck that needs no server (CLI --html and the Present page's download, the same bytes; opened offline
in Chromium). VERDICT-LOGIC ONLY data: the runs are fabricated (story_helpers.py), never trained."""

from __future__ import annotations

import html
from datetime import date
from pathlib import Path

import pytest

from skipweb.facts import Metric, metric_name
from skipweb.stories import STORIES, story_runs
from tests.stories.story_helpers import FABRICATED_SEEDS, TINY, app, fabricate, new_db, seeded, shown

KEY = Metric.EPOCH_TRAIN_ERROR
CLEAR = {"plain-20": [0.09, 0.11, 0.13], "resnet-20": [0.09, 0.11, 0.13], "plain-56": [0.30, 0.32, 0.34],
         "resnet-56": [0.02, 0.03, 0.04]}  # fmt: skip  (all three findings agree)
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def two(tmp_path: Path):
    """Two degradation experiments: the first with three seeds (every finding agrees), then a newer one of
    seed 0 only (as `submit --preset degradation --seeds 0` makes: every finding inconclusive)."""
    url = new_db(tmp_path)
    specs = STORIES["degradation"].preset.specs(seeds=FABRICATED_SEEDS, **TINY)
    from db.runs import get_run

    first = get_run(url, fabricate(url, "degradation", specs, seeded(specs, CLEAR, KEY))[0]).experiment_id
    one = STORIES["degradation"].preset.specs(seeds=(0,), **TINY)
    fabricate(url, "degradation", one, seeded(one, CLEAR, KEY))
    return url, tmp_path, first


def test_metric_names_are_human() -> None:
    assert metric_name(KEY) == "training error (epoch mean)"
    assert metric_name(KEY, final=True) == "training error, last epoch"
    assert metric_name("test/error") == "test error" and metric_name("val/miou") == "validation mIoU"
    assert metric_name("probe/x") == "probe/x"  # not named yet: shown as it is


def test_story_view_verdicts_names_and_the_newer_experiment(two, monkeypatch) -> None:
    url, tmp, first = two
    at = app(monkeypatch, url, tmp, story="degradation", exp=str(first))
    assert not at.exception and not at.error
    text = shown(at)
    # the verdict is its own element (styled large and coloured by its key), beside the sentence
    assert [m.value for m in at.markdown if m.value in ("agrees", "inconclusive", "contradicts")] == ["agrees"] * 3
    assert "A newer experiment is tagged `story:degradation`: #2" in text and "stays on #1" in text
    assert "[Show experiment #2 instead](./present?story=degradation&exp=2)" in text
    specs = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "training error, last epoch against depth" in specs and "epoch/train_error" not in specs
    assert f"present?story=degradation&exp={first}&slide=1" in text  # the slide mode's link
    # without exp: the newest is shown and pinned in the address, so a reload keeps it
    at = app(monkeypatch, url, tmp, story="degradation")
    assert not at.exception and at.query_params["exp"] == "2" and "Computed from experiment #2" in shown(at)


def test_slide_mode_one_finding_per_screen(two, monkeypatch) -> None:
    url, tmp, first = two
    at = app(monkeypatch, url, tmp, story="degradation", exp=str(first), slide="2")
    assert not at.exception and not at.error
    assert "slide 2 of 5" in shown(at)  # the claim, three findings beside the depth chart, the curves alone
    assert [m.value for m in at.markdown if m.value == "agrees"] == ["agrees"]
    assert len(at.get("plotly_chart")) == 1
    at.button(key="slide-Right").click().run()
    assert not at.exception and at.query_params["slide"] == "3" and "slide 3 of 5" in shown(at)
    at = app(monkeypatch, url, tmp, story="degradation", exp=str(first), slide="99")  # past the end: the last
    assert not at.exception and at.query_params["slide"] == "5" and "slide 5 of 5" in shown(at)
    assert len(at.get("plotly_chart")) == 1 and not [m for m in at.markdown if m.value == "agrees"]


def test_runs_and_launch_links_pin_the_experiment(two, monkeypatch) -> None:
    url, tmp, _ = two
    at = app(monkeypatch, url, tmp, page="runs")
    assert "(experiment 2), finished: see what it found →](./present?story=degradation&exp=2)" in shown(at)


@pytest.mark.slow
def test_deck_cli_writes_what_the_page_downloads_and_it_opens_offline(two, monkeypatch, tmp_path) -> None:
    from typer.testing import CliRunner

    from db.experiments import get_experiment
    from skipweb.cli import app as cli
    from skipweb.settings import get_settings
    from skipweb.stories.deck import deck_html

    url, tmp, first = two
    monkeypatch.setenv("SKIPWEB_DATA_DIR", str(tmp))
    monkeypatch.setenv("SKIPWEB_DATABASE_URL", url)
    get_settings.cache_clear()
    out = tmp_path / "talk" / "deck.html"
    result = CliRunner().invoke(cli, ["story", "degradation", "--exp", str(first), "--html", str(out)])
    assert result.exit_code == 0, result.output
    story, runs = STORIES["degradation"], story_runs(url, first)
    page = deck_html(story, story.build(url, runs), get_experiment(url, first), runs)  # as the button builds it
    assert out.read_text(encoding="utf-8") == page  # the same bytes (fixed chart ids, no timestamps but the date)
    assert page == deck_html(story, story.build(url, runs), get_experiment(url, first), runs)
    assert f"experiment #{first}" in page and f"Deck made {date.today().isoformat()}" in page
    assert page.count("agrees</div>") == 3 and page.count("* plotly.js v") == 1  # the library inlined once
    assert "training error, last epoch" in page and html.escape(story.recipe_note) in page
    opened_offline(out, charts=4)  # the depth chart beside each of the three findings, then the curves


def opened_offline(path: Path, charts: int, browser=None) -> None:
    """Open the file in Chromium with the network off (every request that is not the file itself fails):
    every chart draws, and nothing was requested. ``browser``: an open Playwright browser to use."""
    if browser is None:
        if not Path(CHROMIUM).exists():
            pytest.skip("Debian chromium is not installed (scripts/system-deps.sh)")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            launched = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox",
                                                                         "--disable-gpu"])  # fmt: skip
            opened_offline(path, charts, launched)
            launched.close()
        return
    asked, errors = [], []
    context = browser.new_context(viewport={"width": 1280, "height": 720}, offline=True)
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                  else (asked.append(route.request.url), route.abort()))  # fmt: skip
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: asked.append(r.url))
    page.goto(path.resolve().as_uri())
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}",
                           timeout=60_000)  # fmt: skip
    assert page.locator(".js-plotly-plot").count() == charts
    page.screenshot(path=str(path.with_suffix(".png")))  # kept beside the deck
    page.keyboard.press("ArrowRight")  # the arrow keys step to the next screen
    page.wait_for_function("window.scrollY > 0", timeout=10_000)
    page.screenshot(path=str(path.with_name(path.stem + "-finding-1.png")))
    context.close()
    assert not asked and not errors, (asked, errors)
