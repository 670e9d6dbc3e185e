"""Present's story view: ``/present?story=<key>[&exp=<id>]`` shows one reproduction story (title, claim
with its papers, the findings computed from the runs with agrees/contradicts badges, the figures) and
``/present?story=`` the index of all six. Without ``exp`` the newest experiment tagged ``story:<key>``
is used. Every sentence comes from ``skipweb.stories``: this module only lays it out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from skipweb import charts
from skipweb.errors import one_line
from skipweb.facts import CHECKPOINT_NAME
from skipweb.stories import AGREES, CONTRADICTS, STORIES, Story, StoryView, story_experiment, story_runs
from skipweb.ui import data
from skipweb.ui.common import colorize, escape_md, link, run_context

BADGE = {AGREES: "green", CONTRADICTS: "red"}  # anything else: gray
GALLERY_IMAGES = 4


def index(heading: bool = True) -> None:
    """The six stories, one link each."""
    if heading:
        st.header("Reproduction stories", anchor=False)
    for story in STORIES.values():
        link("present", story.title, story=story.key)
        st.caption(f"{story.summary} Launch preset: {story.button}.")


def page(params: Mapping[str, str]) -> None:
    key = (params.get("story") or "").strip().lower()
    if not key:
        index()
        return
    story = STORIES.get(key)
    if story is None:
        st.error(f"Unknown story {key!r}; valid stories: {', '.join(STORIES)}.")
        index(heading=False)
        return

    url = data.db_url()
    try:
        exp, runs = _experiment(url, story, params.get("exp"))
    except ValueError as e:
        st.error(str(e))
        return
    except Exception as e:  # unreachable / unmigrated database
        st.error(f"Cannot read the database ({type(e).__name__}): {str(e).splitlines()[0]}")
        return
    render(story, story.build(url, runs), exp, runs)


def _experiment(url: str, story: Story, raw: str | None) -> tuple[Any | None, list[Any]]:
    """(experiment, its runs): the one in ``exp``, or the newest tagged ``story:<key>`` (None, [])."""
    from db.experiments import get_experiment

    if raw is None or raw == "":
        exp = story_experiment(url, story.key)
    else:
        try:
            exp_id = int(raw)
        except ValueError:
            raise ValueError(
                f"Bad `exp` parameter {raw!r}: it must be an experiment id (an integer)."
            ) from None
        exp = get_experiment(url, exp_id)
        if exp is None:
            raise ValueError(f"Experiment {exp_id} does not exist (deleted?).")
    return exp, (story_runs(url, exp.id) if exp is not None else [])


def render(story: Story, view: StoryView, exp: Any | None, runs: Sequence[Any]) -> None:
    st.title(story.title, anchor=False)
    papers = "; ".join(f"[{cite}]({url})" for cite, url in story.papers)
    st.markdown(f"**Claim.** {story.claim} ({papers})")
    p = story.preset
    real = f"; on real data use {p.real_dataset}" if p.real_dataset else ""
    if exp is None:
        st.info(
            f"No experiment is tagged `{story.tag}` yet: launch the **{story.button}** preset on the Launch page "
            f"({p.dataset}, {p.training()['epochs']} epochs × seeds {', '.join(map(str, p.seeds))}{real}). "
            "Until then every finding is inconclusive."
        )
        link("launch", "Launch page")
    else:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(exp.counts.items())) or "no runs"
        tagged = "" if story.tag in exp.tags else f" (not tagged `{story.tag}`: judged as this story anyway)"
        st.caption(f"Computed from experiment #{exp.id} «{escape_md(exp.title)}»{tagged}: {counts}{real}.")
        if runs:
            st.caption(f"Ran: {run_context(runs)}")
    st.subheader("Findings", anchor=False)
    for f in view.findings:
        # the verdict as a large coloured badge (a heading), the sentence in body text below it
        st.markdown(f"#### :{BADGE.get(f.verdict, 'gray')}-badge[{f.verdict}]\n{f.text}")
    for note in view.notes:
        st.caption(note)
    st.caption(story.recipe_note)
    if story.caveat:
        st.info(story.caveat)
    for i, (caption, fig) in enumerate(view.figures):
        charts.for_projector(fig, size=18, height=600)
        st.plotly_chart(fig, key=f"story-{story.key}-{i}")
        st.caption(caption)
    if view.gallery:
        gallery(view.gallery)
    if exp is not None:
        link("compare", "Everything else in Compare", exp=exp.id)


def gallery(runs: Sequence[tuple[str, Any]]) -> None:
    """The first test images, the truth, and each run's prediction side by side (from checkpoints)."""
    st.subheader("Predictions", anchor=False)
    preds: dict[str, Any] = {}
    images = truths = None
    for name, r in runs:
        ckpt = Path(r.checkpoint_path) / CHECKPOINT_NAME if r.checkpoint_path else None
        if ckpt is None or not ckpt.is_file():
            st.caption(f"{name} (run {r.id}): no checkpoint on this machine, no predictions.")
            continue
        try:
            images, truths, pred, _ = data.predictions(r.spec_json, r.checkpoint_path, ckpt.stat().st_mtime,
                                                  GALLERY_IMAGES, (r.id, r.status, r.steps_done))  # fmt: skip
        except Exception as e:  # data not on this machine, a checkpoint from another version...
            st.caption(f"{name} (run {r.id}): could not predict ({one_line(e)}).")
            continue
        preds[name] = pred
    if images is None or truths is None or not preds:
        return
    st.caption("Columns: image | truth | " + " | ".join(preds) + ". Look for thin or small shapes.")
    for i in range(len(images)):
        cols = st.columns(2 + len(preds))
        cols[0].image(images[i], caption=f"test image {i}", width="stretch", clamp=True)
        cols[1].image(colorize(truths[i]), caption="truth", width="stretch")
        for col, (label, pred) in zip(cols[2:], preds.items(), strict=True):
            col.image(colorize(pred[i]), caption=label, width="stretch")
