"""The stories on the dashboard (stories 1-3 themselves: test_stories.py): the Launch page's presets come
from the stories and tag and title the experiment they launch; the Present page shows a story's computed
findings (on the real tiny runs of story_helpers.digits), an unknown story in one line, and the index.
"""

from __future__ import annotations

from pathlib import Path

from skipweb.stories import STORIES, get_story, story_experiment
from tests.stories.story_helpers import (
    app,
    build,
    digits,  # noqa: F401 - the shared real-training fixture
    new_db,
    shown,
)


def test_launch_presets_come_from_the_stories() -> None:
    from skipweb.ui.launch import PRESETS

    for story in STORIES.values():
        preset = PRESETS[story.button]
        assert preset["tags"] == story.tag and preset["title"] == story.title
        assert preset["families"] == {f: list(d) for f, d in story.preset.families.items()}
        assert preset["seeds"] == "0,1,2"
        assert {k: preset[k] for k in story.preset.training()} == story.preset.training()
    assert "MLP residual" in PRESETS  # the one preset that is not a story


def test_present_story_shows_the_computed_findings(digits, monkeypatch) -> None:  # noqa: F811
    url = digits["url"]
    at = app(monkeypatch, url, digits["tmp"], story="degradation")
    assert not at.exception and not at.error
    text = shown(at)
    story = get_story("degradation")
    assert story.title in text and "https://arxiv.org/abs/1512.03385" in text
    found = build(url, "degradation").findings
    for f in found:
        assert f.text in text
    # each verdict its own element (large and coloured by its key, st-key-verdict-<verdict>), then its sentence
    values = [m.value for m in at.markdown]
    assert [values[values.index(f.text) - 1] for f in found] == [f.verdict for f in found]
    exp = story_experiment(url, "degradation")
    assert f"Computed from experiment #{exp.id}" in text
    assert story.recipe_note in text and "Seeds 0, 1, 2" in story.recipe_note
    assert len(at.get("plotly_chart")) == 2
    # the same story pinned to an experiment that does not exist: one line, no traceback
    at = app(monkeypatch, url, digits["tmp"], story="degradation", exp="999")
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
    values = [m.value for m in at.markdown]
    first = next(i for i, v in enumerate(values) if v.startswith("Cannot test resnet-20 against highway-20 yet"))
    assert values[first - 1] == "inconclusive"


def test_launch_story_preset_tags_and_titles_the_experiment(tmp_path: Path, monkeypatch) -> None:
    url = new_db(tmp_path)
    at = app(monkeypatch, url, tmp_path, page="launch")
    at.button(key="preset_Gradient regimes").click().run()
    assert not at.exception
    assert at.text_input(key="launch_tags").value == "story:gradient-regimes"
    assert "present?story=gradient-regimes" in shown(at)
    preset = get_story("gradient-regimes").preset
    n = len(preset.specs())  # 2 families × 2 depths × 2 norms × 2 inits × 3 seeds
    assert n == 48 and f"**{n} runs**" in "\n".join(str(e.value) for e in at.markdown)
    assert at.text_input(key="launch_seeds").value == "0,1,2"
    assert at.number_input(key="launch_epochs").value == preset.training()["epochs"] == 1
    assert at.number_input(key="launch_lr").value == preset.training()["lr"]
    assert at.button(key="launch_go").disabled  # 48 runs: more than 10 ask for a tick first
    at.checkbox(key="launch_sure").check().run()
    assert not at.button(key="launch_go").disabled
    at.button(key="launch_go").click().run()
    assert not at.exception and f"queued {n} runs" in shown(at)
    exp = story_experiment(url, "gradient-regimes")
    assert exp is not None and exp.title == get_story("gradient-regimes").title
    assert exp.tags == ["story:gradient-regimes"]
