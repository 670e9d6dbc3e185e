"""Present's story view: ``/present?story=<key>[&exp=<id>][&slide=<n>]`` shows one reproduction story (title,
claim with its papers, each finding computed from the runs with its verdict large and coloured beside it, the
figures) and ``/present?story=`` the index of all six. Without ``exp`` the newest experiment tagged
``story:<key>`` is shown and written into the URL, so a reload (or a later launch) never changes the slide;
when a newer one exists the page offers it. ``slide=n`` shows one screen at a time (the claim, then one finding
with its chart per screen), stepped with the arrow keys or buttons. Every sentence comes from
``skipweb.stories``: this module only lays it out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from skipweb import charts
from skipweb.errors import one_line
from skipweb.facts import CHECKPOINT_NAME
from skipweb.stories import STORIES, Story, StoryView
from skipweb.stories.deck import chart_of, deck_html
from skipweb.ui import data
from skipweb.ui.formatting import escape_md, run_context
from skipweb.ui.links import link
from skipweb.ui.masks import colorize

GALLERY_IMAGES = 4
SLIDE_CHART_HEIGHT = 400  # under the verdict and its sentence, within a 1280×720 screen

# static, written here; never interpolated with user input. A finding's verdict is a keyed container
# (``st-key-verdict-<verdict>-<i>``): the largest text of its row, white on the verdict's colour, centred
# (Streamlit's markdown block has a -1rem bottom margin, which left the word low and clipped in its chip).
_CSS = """
<style>
[class*="st-key-verdict-"] {border-radius: 0.6rem; padding: 0.3rem 0.6rem; background: #57606a;}
[class*="st-key-verdict-agrees"] {background: #1a7f37;}
[class*="st-key-verdict-contradicts"] {background: #cf222e;}
.block-container [class*="st-key-verdict-"] p {color: white !important; font-size: min(2.3rem, 2.9vw) !important;
  font-weight: 700; text-align: center; margin: 0; padding: 0.15rem 0; line-height: 1.3; white-space: nowrap;}
[class*="st-key-verdict-"] [data-testid="stMarkdownContainer"] {margin-bottom: 0 !important;}
</style>
"""


def index(heading: bool = True) -> None:
    """The six stories, one link each, pinned to the experiment each one shows now."""
    if heading:
        st.header("Reproduction stories", anchor=False)
    url = data.db_url()
    for story in STORIES.values():
        exp = data.story_experiment(url, story.key)
        link("present", story.title, story=story.key, exp=exp.id if exp is not None else None)
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
        newest = data.story_experiment(url, story.key)
    except ValueError as e:
        st.error(str(e))
        return
    except Exception as e:  # unreachable / unmigrated database
        st.error(f"Cannot read the database ({type(e).__name__}): {str(e).splitlines()[0]}")
        return
    if exp is not None and not params.get("exp"):
        st.query_params["exp"] = str(exp.id)  # pinned: the link in the address bar keeps showing this one
    st.markdown(_CSS, unsafe_allow_html=True)
    view = data.story_view(url, story.key, exp.id if exp is not None else None)
    if "slide" in params:
        slides(story, view, exp, params["slide"])
        return
    render(story, view, exp, runs, newest)


def _experiment(url: str, story: Story, raw: str | None) -> tuple[Any | None, list[Any]]:
    """(experiment, its runs): the one in ``exp``, or the newest tagged ``story:<key>`` (None, [])."""
    if raw is None or raw == "":
        exp = data.story_experiment(url, story.key)
    else:
        try:
            exp_id = int(raw)
        except ValueError:
            raise ValueError(
                f"Bad `exp` parameter {raw!r}: it must be an experiment id (an integer)."
            ) from None
        exp = data.experiment(url, exp_id)
        if exp is None:
            raise ValueError(f"Experiment {exp_id} does not exist (deleted?).")
    return exp, (data.experiment_runs(url, exp.id) if exp is not None else [])


def finding(f: Any, i: int) -> None:
    """The verdict, large and coloured, beside its sentence."""
    left, right = st.columns([1, 3], vertical_alignment="center")
    with left.container(key=f"verdict-{f.verdict}-{i}"):
        st.markdown(f.verdict)
    right.markdown(f.text)


def newer_note(story: Story, exp: Any | None, newest: Any | None) -> None:
    """Which experiment this is; the newest tagged one, when it is another."""
    if exp is None or newest is None or newest.id == exp.id:
        return
    done = sum(n for s, n in newest.counts.items() if s not in ("queued", "running"))
    st.info(f"A newer experiment is tagged `{story.tag}`: #{newest.id} «{escape_md(newest.title)}» ({done} of "
            f"{sum(newest.counts.values())} runs finished). This page stays on #{exp.id}.")  # fmt: skip
    link("present", f"Show experiment #{newest.id} instead", story=story.key, exp=newest.id)


def render(story: Story, view: StoryView, exp: Any | None, runs: Sequence[Any], newest: Any | None = None) -> None:
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
        newer_note(story, exp, newest)
    nav = st.columns(2)
    with nav[0]:
        link("present", "Slide mode: one finding per screen →", story=story.key,
             exp=exp.id if exp is not None else None, slide=1)  # fmt: skip
    with nav[1]:
        st.download_button("Download as a deck (one HTML file, works offline)",
                           data=lambda: deck_html(story, data.story_view(data.db_url(), story.key, exp.id if exp else None), exp,
                                                  runs),
                           file_name=f"{story.key}-deck.html", mime="text/html", on_click="ignore",
                           key="story-deck")  # fmt: skip
    st.subheader("Findings", anchor=False)
    for i, f in enumerate(view.findings):
        finding(f, i)
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


def slide_count(view: StoryView) -> int:
    """The claim, one screen per finding, one per figure no finding shows."""
    shown = {chart_of(view, i) for i in range(len(view.findings))}
    return 1 + len(view.findings) + sum(k not in shown for k in range(len(view.figures)))


def slides(story: Story, view: StoryView, exp: Any | None, raw: str) -> None:
    """One screen of the story: ``slide=1`` the claim, then each finding with its chart, then other charts."""
    total = slide_count(view)
    try:
        n = min(max(int(raw), 1), total)
    except ValueError:
        n = 1
    if str(n) != raw:
        st.query_params["slide"] = str(n)
    prev, head, nxt = st.columns([1, 6, 1], vertical_alignment="center")
    where = f"experiment #{exp.id} «{escape_md(exp.title)}»" if exp is not None else "no experiment yet"
    head.caption(f"{escape_md(story.title)} · {where} · slide {n} of {total} (← → keys)")
    # words, not arrows: Streamlit draws the shortcut's arrow beside the label itself
    for col, label, to, keyname in ((prev, "Back", n - 1, "Left"), (nxt, "Next", n + 1, "Right")):
        if col.button(label, key=f"slide-{keyname}", shortcut=keyname, disabled=not 1 <= to <= total,
                      width="stretch"):  # fmt: skip
            st.query_params["slide"] = str(to)
            st.rerun()
    if n == 1:
        st.title(story.title, anchor=False)
        st.markdown(f"**Claim.** {story.claim}")
        for i, f in enumerate(view.findings):
            finding(f, i)
        return
    k = n - 2
    if k < len(view.findings):
        finding(view.findings[k], k)
        fig_no = chart_of(view, k)
    else:
        shown = {chart_of(view, i) for i in range(len(view.findings))}
        fig_no = [j for j in range(len(view.figures)) if j not in shown][k - len(view.findings)]
    if fig_no is not None:
        caption, fig = view.figures[fig_no]
        charts.for_projector(fig, size=16, height=SLIDE_CHART_HEIGHT)
        st.plotly_chart(fig, key=f"slide-{story.key}-{n}")
        st.caption(caption)


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
