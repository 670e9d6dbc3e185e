"""The six reproduction stories: each a Launch preset (``story.launch_preset()``) plus a Present view
(``/present?story=<key>``) whose findings are computed from the runs of the experiment tagged
``story:<key>``.

>>> from skipweb.stories import STORIES, get_story
>>> view = get_story("degradation").build(db_url, runs)
"""

from __future__ import annotations

from typing import Any

from skipweb.stories import degradation, densenet, gradients, highway, landscapes, unet
from skipweb.stories.base import (
    AGREES,
    CONTRADICTS,
    INCONCLUSIVE,
    TAG_PREFIX,
    Finding,
    Preset,
    Story,
    StoryView,
)

STORIES: dict[str, Story] = {
    s.key: s
    for s in (
        degradation.STORY,
        gradients.STORY,
        densenet.STORY,
        unet.STORY,
        highway.STORY,
        landscapes.STORY,
    )
}

__all__ = [
    "AGREES",
    "CONTRADICTS",
    "INCONCLUSIVE",
    "STORIES",
    "TAG_PREFIX",
    "Finding",
    "Preset",
    "Story",
    "StoryView",
    "get_story",
    "story_experiment",
    "story_runs",
]


def get_story(key: str) -> Story:
    """The story named ``key``; KeyError with one line listing the valid keys otherwise."""
    try:
        return STORIES[key]
    except KeyError:
        raise KeyError(f"unknown story {key!r}; valid stories: {', '.join(STORIES)}") from None


def story_experiment(db: Any, key: str) -> Any | None:
    """The newest experiment tagged ``story:<key>`` (an ExperimentRecord), or None."""
    from db.experiments import list_experiments

    found = list_experiments(db, TAG_PREFIX + key)
    return found[0] if found else None


def story_runs(db: Any, experiment_id: int) -> list[Any]:
    """The experiment's runs, oldest first."""
    from db.run_queries import list_runs

    return sorted(list_runs(db, experiment_id=experiment_id, limit=None), key=lambda r: r.id)
