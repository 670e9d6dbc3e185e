"""Launch page: choose families, depths, options, data and recipe; see the grid; submit it.

The form's sections live in skipweb.ui.launch_sections; this page validates what they hold with
``skipweb.grid.plan`` (the grid the CLI and the story presets expand too) before anything is written: an
invalid choice shows its one-line SpecError and queues nothing. Then it previews the grid (sizes, runs that
already exist, an estimate of the worker time) and submits it through skipweb.services.launch.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from skipweb.data import get_dataset_info
from skipweb.grid import estimate, plan
from skipweb.services import presence
from skipweb.services.launch import submit
from skipweb.spec import RunSpec, SpecError
from skipweb.stories import STORIES
from skipweb.ui import data
from skipweb.ui.auth import can_write, current_user, write_denied_note
from skipweb.ui.formatting import fmt_count, fmt_seconds
from skipweb.ui.launch_form import out_of_range, parse_seeds
from skipweb.ui.launch_sections import BASE_DEFAULTS, Form, K, form
from skipweb.ui.links import link, story_links

# One click each: fills the form. ``options`` values are lists: the grid runs every combination. The six
# reproduction stories (skipweb.stories) are the source of truth for their presets; a story preset fills
# the title and the tag ``story:<key>`` that /present?story=<key> looks for.
PRESETS: dict[str, dict] = {
    **{story.button: story.launch_preset() for story in STORIES.values()},
    "MLP residual": {
        "help": "deep MLPs with and without residual blocks (no_skip=True is the plain twin).",
        "families": {"mlp": [8, 32]},
        "options": {"no_skip": [False, True]},
        "dataset": "digits",
        "epochs": 10,
        "lr": 0.05,
        "title": "MLP with and without residual blocks",
    },
}
DEMO = STORIES["degradation"]  # the one-click demo is the degradation story, tagged so its view finds it


CONFIRM_ABOVE = 10  # launching more runs than this asks for a tick first


# ---- grid ------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=512)
def model_facts(family: str, depth: int, dataset: str, options: tuple) -> dict:
    """Parameters and FLOPs of one configuration on one dataset (cached: building a model takes time)."""
    from skipweb.describe import describe

    d = get_dataset_info(dataset)
    info = describe(family, depth, num_classes=d.num_classes, in_channels=d.in_channels, image_size=d.image_size,
                    **dict(options))  # fmt: skip
    return {"params": info["params"], "flops": info["flops"], "skip_layers": info["skip_layers"]}


# ---- page ------------------------------------------------------------------------------------------
def page() -> None:
    st.title("Launch")
    for key, value in BASE_DEFAULTS.items():
        st.session_state.setdefault(K + key, value)
    writable = can_write()
    if not writable:
        write_denied_note()
    show_launched()
    exps = data.cached_experiments()
    if not exps:
        demo_box(writable)
    story_links(exps)

    chosen = form(PRESETS)
    st.subheader("Grid")
    specs = validate(chosen)
    if specs is None:
        return
    force, sure = preview(specs, chosen.fields["device"])
    if st.button("Launch", type="primary", disabled=not writable or not sure, key=K + "go"):
        launch(specs, chosen, force)


def validate(chosen: Form) -> list[RunSpec] | None:
    """The grid the form asks for, or None after saying (one line) why there is none: nothing is written
    unless it all validates."""
    if len(chosen.tasks) > 1:
        st.error("the chosen families mix classification and segmentation; choose families of one task")
        return None
    if not chosen.families:
        st.info("Choose one or more model families (or click a preset).")
        return None
    numbers = {**chosen.fields, "landscape_grid": chosen.landscape_grid if chosen.landscape else None}
    if refused := out_of_range(numbers):
        st.error(refused)
        return None
    f = chosen.fields
    base = {**f, "epochs": int(f["epochs"]), "batch_size": int(f["batch_size"]), "lr": float(f["lr"]),
            "warmup_epochs": float(f["warmup_epochs"]), "probe_every": int(f["probe_every"])}  # fmt: skip
    try:
        if not chosen.dataset:
            raise SpecError("choose a dataset")
        return plan(chosen.families, chosen.depths, parse_seeds(chosen.seeds), {**base, "dataset": chosen.dataset},
                    chosen.options)  # fmt: skip
    except SpecError as e:
        st.error(str(e).splitlines()[0] if str(e) else "invalid choice")
        return None


def preview(specs: list[RunSpec], device: str) -> tuple[bool, bool]:
    """The grid as a table (sizes, the runs that exist already), the estimate and where it runs; the
    (force, sure) ticks."""
    done = duplicates(tuple(s.config_hash() for s in specs))
    rows = []
    for s in specs:
        size = model_facts(s.family, s.depth, s.dataset, tuple(sorted(s.options.items())))
        rows.append({"label": s.label, "seed": s.seed, "params": fmt_count(size["params"]),
                     "MFLOPs/sample": round(size["flops"] / 1e6, 2), "skip layers": size["skip_layers"],
                     "already": "run {} ({})".format(*done[s.config_hash()]) if s.config_hash() in done else ""})  # fmt: skip
    st.write(f"**{len(specs)} runs** ({len(done)} already succeeded, running or queued) · {guess(specs)}")
    where(device)
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    force = st.checkbox("Run again the configurations that succeeded, are running or are queued", key=K + "force",
                        disabled=not done)  # fmt: skip
    queued = len(specs) if force else len(specs) - len(done)
    sure = True
    if queued > CONFIRM_ABOVE:  # a stray Enter in a depth picker once queued 20 runs
        sure = st.checkbox(f"Yes, queue {queued} runs", key=K + "sure", value=False)
    return force, sure


def guess(specs: list[RunSpec]) -> str:
    """The worker time the grid should take, from similar finished runs."""
    seconds, known = estimate(specs, data.runs(data.db_url(), status=("succeeded",), limit=2000))
    if known == len(specs):
        return f"about {fmt_seconds(seconds)} of worker time, from similar finished runs"
    if known:
        return (f"about {fmt_seconds(seconds)} of worker time for {known} of them (from similar finished runs); "
                f"no similar run has finished for the other {len(specs) - known}")  # fmt: skip
    return "no estimate yet: no similar run (family, depth, dataset, batch) has finished"


def launch(specs: list[RunSpec], chosen: Form, force: bool) -> None:
    tags = [t.strip() for t in chosen.tags.split(",") if t.strip()]
    surface = {"grid": int(chosen.landscape_grid)} if chosen.landscape else None
    do_submit(specs, title=chosen.title.strip() or f"{', '.join(chosen.families)} on {chosen.dataset}",
              description=chosen.description, tags=tags, force=force, landscape=surface,
              story=st.session_state.get(K + "story"))  # fmt: skip


def where(device: str) -> None:
    """Which workers are connected now, and where runs asking for ``device`` will go."""
    now = data.workers_now(data.db_url())
    takes, sentence = presence.placement(device, now)
    text = f"{presence.summary(now).capitalize()}. " + (f"This grid {sentence}." if takes else f"These runs will be {sentence}.")
    (st.caption if takes else st.warning)(text)


def duplicates(hashes: tuple[str, ...]) -> dict[str, tuple[int, str]]:
    """config_hash → (run id, status) of the grid's configurations that succeeded, run or are queued."""
    return data.duplicates(data.db_url(), hashes)


def do_submit(specs, *, title: str, description: str = "", tags=(), force=False, landscape=None, story=None) -> None:
    if not can_write():
        st.error("sign in to launch runs")
        return
    try:
        result = submit(
            specs,
            title=title,
            description=description,
            owner=current_user(),
            tags=tags,
            force=force,
            db=data.engine(),
            celery=data.celery_app(),
            landscape=landscape,
        )
    except SpecError as e:
        st.error(str(e).splitlines()[0])
        return
    data.clear()
    if result.experiment_id is None:
        st.warning(f"nothing queued: all {len(result.skipped)} configurations already succeeded, run or are queued "
                   "(tick 'Run again' to queue them anyway)")
        return
    # rerun at once, so the page reflects the launch (the empty-database box goes, story links appear);
    # what was launched is shown on top of the fresh page
    st.session_state[FLASH] = {"exp": result.experiment_id, "runs": len(result.run_ids),
                               "landscapes": len(result.landscape_job_ids), "skipped": len(result.skipped),
                               "warning": result.warning, "story": story}  # fmt: skip
    st.session_state.pop(K + "sure", None)  # a second large launch asks again
    st.rerun()


FLASH = "launch_flash"


def show_launched() -> None:
    """The last launch's result, once, on the page it reran into."""
    done = st.session_state.pop(FLASH, None)
    if not done:
        return
    st.success(f"Experiment {done['exp']}: queued {done['runs']} runs.")
    if done["landscapes"]:
        st.info(f"A loss landscape follows each run that succeeds ({done['landscapes']} pending).")
    if done["skipped"]:
        st.info(f"skipped {done['skipped']} configurations that already succeeded, run or are queued")
    if done["warning"]:
        st.warning(done["warning"])
    cols = st.columns(3 if done["story"] else 2)
    with cols[0]:
        link("runs", "Watch them on Runs", exp=done["exp"])
    with cols[1]:
        link("compare", "Compare them", exp=done["exp"])
    if done["story"]:
        with cols[2]:
            link("present", "Open the story view", story=done["story"], exp=done["exp"])


def demo_box(writable: bool) -> None:
    specs = DEMO.preset.specs()  # device auto: on a GPU worker when one is connected, else on a CPU one
    with st.container(border=True):
        st.markdown(
            f"**The database is empty.** Start with the demo: **{DEMO.title}**. {DEMO.summary} "
            f"{len(specs)} runs on the bundled digits (seeds {', '.join(map(str, DEMO.preset.seeds))}; about two "
            "minutes on a 2-core CPU). When they finish, the story view tells what they found."
        )
        where("auto")
        if st.button("Run the demo", type="primary", disabled=not writable, key="demo_go"):
            do_submit(specs, title=DEMO.title, description="the one-click demo", tags=[DEMO.tag, "demo"],
                      story=DEMO.key)  # fmt: skip
