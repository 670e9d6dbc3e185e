"""Launch page: choose families, depths, options, data and recipe; see the grid; submit it.

The grid is validated by the same ``skipweb.grid.plan`` as the CLI before anything is written; an
invalid choice shows its one-line SpecError and queues nothing.
"""

from __future__ import annotations

import itertools

import pandas as pd
import streamlit as st

from skipweb import facts
from skipweb.data import get_dataset_info, list_datasets
from skipweb.grid import estimate, plan
from skipweb.models import get_info, list_models
from skipweb.recipes import recipe_for
from skipweb.services import presence
from skipweb.services.launch import submit
from skipweb.spec import RunSpec, SpecError
from skipweb.stories import STORIES
from skipweb.ui import data
from skipweb.ui.common import (
    can_write,
    current_user,
    fmt_count,
    fmt_seconds,
    link,
    story_links,
    write_denied_note,
)
from skipweb.ui.launch_form import OPTION_LABELS, out_of_range, parse_seeds

K = "launch_"  # session-state prefix of this page's widgets
DEPTH_LIMIT = 200
FORM_FIELDS = ("epochs", "batch_size", "optimizer", "lr", "schedule", "warmup_epochs")
BASE_DEFAULTS = {
    **{k: v for k, v in recipe_for("digits").fields().items() if k in FORM_FIELDS},
    "seeds": "0",  # story presets fill 0,1,2
    "probe_every": 10,
    "device": "auto",
    "landscape": False,
    "landscape_grid": facts.LANDSCAPE_GRID,
    "title": "",
    "tags": "",
    "description": "",
}

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


def _reset_form() -> None:
    for key in [k for k in st.session_state if str(k).startswith(K)]:
        del st.session_state[key]


def apply_recipe() -> None:
    """The dataset selectbox's callback: fill the recipe fields with the newly chosen dataset's recipe."""
    dataset = st.session_state.get(K + "dataset")
    if dataset:
        for key, value in recipe_for(dataset).fields().items():
            if key in FORM_FIELDS:
                st.session_state[K + key] = value


def apply_preset(preset: dict) -> None:
    """Fill the form's session state from a preset (a button callback: runs before the widgets)."""
    _reset_form()
    st.session_state[K + "families"] = list(preset["families"])
    for fam, depths in preset["families"].items():
        st.session_state[K + f"depths_{fam}"] = list(depths)
    for name, values in preset.get("options", {}).items():
        st.session_state[K + f"opt_{name}"] = list(values)
    st.session_state[K + "dataset"] = preset["dataset"]
    for key in BASE_DEFAULTS:
        if key in preset:
            st.session_state[K + key] = preset[key]
    if preset.get("story"):
        st.session_state[K + "story"] = preset["story"]


CONFIRM_ABOVE = 10  # launching more runs than this asks for a tick first


# ---- grid ------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=512)
def model_facts(family: str, depth: int, dataset: str, options: tuple) -> dict:
    """Parameters and FLOPs of one configuration on one dataset (cached: building a model takes time)."""
    from skipweb.describe import describe

    d = get_dataset_info(dataset)
    info = describe(
        family,
        depth,
        num_classes=d.num_classes,
        in_channels=d.in_channels,
        image_size=d.image_size,
        **dict(options),
    )
    return {"params": info["params"], "flops": info["flops"], "skip_layers": info["skip_layers"]}


def build_grid(
    depths: dict[str, list[int]], options: dict[str, list], seeds: list[int], base: dict
) -> list[RunSpec]:
    """Every family × its depths × seeds × option combination, validated by ``plan``; duplicates (an
    option the family does not declare) are dropped. Raises SpecError (one line)."""
    if not depths:
        raise SpecError("choose at least one model family")
    specs: dict[str, RunSpec] = {}
    for family, fam_depths in depths.items():
        if not fam_depths:
            raise SpecError(f"choose at least one depth for {family}")
        declared = get_info(family).options
        mine = {k: v for k, v in options.items() if k in declared and v}
        names = list(mine)
        for combo in itertools.product(*(mine[n] for n in names)) if names else [()]:
            for spec in plan([family], fam_depths, seeds, base, dict(zip(names, combo, strict=True))):
                specs.setdefault(spec.config_hash(), spec)
    return list(specs.values())


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

    st.subheader("Presets")
    per_row = 4  # seven presets in one row truncated their names
    items = list(PRESETS.items())
    cols = [c for i in range(0, len(items), per_row) for c in st.columns(per_row)][: len(items)]
    for col, (name, preset) in zip(cols, items, strict=True):
        col.button(
            name,
            key=f"preset_{name}",
            help=preset["help"],
            on_click=apply_preset,
            args=(preset,),
            width="stretch",
        )
    if story := st.session_state.get(K + "story"):
        st.caption(
            f"Reproduction story: tagged `story:{story}` and titled with the story, so the Present page's "
            "story view computes its findings from these runs (keep the tag)."
        )
        link("present", "Open the story view", story=story)

    st.subheader("Models")
    families = st.multiselect(
        "Families", list_models(), key=K + "families", help="in registry order; one column of the grid each"
    )
    infos = {f: get_info(f) for f in families}
    tasks = {i.task for i in infos.values()}

    # options declared by the chosen families, in first-seen order; empty = each family's default
    declared: dict[str, list] = {}
    for info in infos.values():
        for name, allowed in info.options.items():
            declared.setdefault(name, [])
            declared[name] += [a for a in allowed if a not in declared[name]]
    options: dict[str, list] = {}
    if declared:
        st.caption("Options (leave empty for each family's default; several values run every combination)")
        ocols = st.columns(min(4, len(declared)))
        for i, (name, allowed) in enumerate(declared.items()):
            owners = ", ".join(f for f, inf in infos.items() if name in inf.options)
            defaults = {str(inf.defaults.get(name)) for inf in infos.values() if name in inf.options}
            options[name] = ocols[i % len(ocols)].multiselect(
                OPTION_LABELS.get(name, name.replace("_", " ")),
                allowed,
                key=K + f"opt_{name}",
                help=f"declared by {owners}; default {', '.join(sorted(defaults))}",
            )

    depths: dict[str, list[int]] = {}
    if families:
        dcols = st.columns(len(families))
        for col, fam in zip(dcols, families, strict=True):
            info = infos[fam]
            first = {k: v[0] for k, v in options.items() if v and k in info.options}
            choices = sorted(set(info.valid_depths(first, DEPTH_LIMIT)) | set(info.example_depths))
            key = K + f"depths_{fam}"
            if key in st.session_state:  # keep a preset's choice only where it is offered
                st.session_state[key] = [d for d in st.session_state[key] if d in choices]
            depths[fam] = col.multiselect(
                f"{fam} depths", choices, key=key, help=f"{info.depth_rule}; examples {info.example_depths}"
            )

    st.subheader("Data and recipe")
    datasets = [d for d in list_datasets() if not tasks or get_dataset_info(d).task in tasks]
    c1, c2, c3, c4 = st.columns(4)
    dataset = c1.selectbox(
        "Dataset",
        datasets,
        key=K + "dataset",
        format_func=lambda d: f"{d} ({get_dataset_info(d).task})",
        on_change=apply_recipe,
        help="choosing a dataset fills the recipe fields with its default recipe",
    )
    if dataset:
        c1.caption(get_dataset_info(dataset).summary)
    epochs = c2.number_input("Epochs", key=K + "epochs", step=1)
    batch_size = c3.number_input("Batch size", key=K + "batch_size", step=1)
    optimizer = c4.selectbox("Optimizer", ["sgd", "adamw"], key=K + "optimizer")
    lr = c1.number_input("Learning rate", format="%.4g", key=K + "lr", step=0.005)
    schedule = c2.selectbox("Schedule", ["multistep", "cosine", "onecycle", "constant"], key=K + "schedule")
    seeds_text = c3.text_input("Seeds", key=K + "seeds", help="comma-separated, e.g. 0,1,2")
    probe_every = c4.number_input("Probe every N steps", key=K + "probe_every", step=1)
    warmup = c4.number_input("Warm-up epochs", step=0.5, key=K + "warmup_epochs",
                             help="linear warm-up of the learning rate")  # fmt: skip
    if dataset:
        recipe = recipe_for(dataset)
        differs = [k for k, v in recipe.fields().items() if k in FORM_FIELDS and st.session_state.get(K + k) != v]
        note = f" This form differs in: {', '.join(differs)}." if differs else ""
        st.caption(f"Default recipe for {dataset}: {recipe.describe()}{note}")
        if differs:
            st.button("Use the dataset's recipe", key=K + "recipe_reset", on_click=apply_recipe)
    device = c1.radio("Device", DEVICES, key=K + "device", horizontal=True, format_func=DEVICES.get,
                      help=RunSpec.model_fields["device"].description)  # fmt: skip
    landscape = c2.checkbox(
        "Loss landscape after training", key=K + "landscape", help="a worker computes it when a run succeeds"
    )
    landscape_grid = c3.number_input(
        "Landscape grid", key=K + "landscape_grid", step=2, disabled=not landscape, help="N: an N×N grid"
    )

    st.subheader("Experiment")
    title = st.text_input("Title", key=K + "title", placeholder="what this experiment asks")
    tags_text = st.text_input("Tags", key=K + "tags", help="comma-separated")
    description = st.text_area("Description", key=K + "description")

    # ---- validate the grid: nothing is written unless it all validates ----
    st.subheader("Grid")
    if len(tasks) > 1:
        st.error("the chosen families mix classification and segmentation; choose families of one task")
        return
    if not families:
        st.info("Choose one or more model families (or click a preset).")
        return
    numbers = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "probe_every": probe_every,
               "warmup_epochs": warmup, "landscape_grid": landscape_grid if landscape else None}  # fmt: skip
    if refused := out_of_range(numbers):
        st.error(refused)
        return
    base = {
        "dataset": dataset,
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "optimizer": optimizer,
        "lr": float(lr),
        "schedule": schedule,
        "warmup_epochs": float(warmup),
        "probe_every": int(probe_every),
        "device": device,
    }
    try:
        if not dataset:
            raise SpecError("choose a dataset")
        seeds = parse_seeds(seeds_text)
        specs = build_grid(depths, options, seeds, base)
    except SpecError as e:
        st.error(str(e).splitlines()[0] if str(e) else "invalid choice")
        return

    done = duplicates(tuple(s.config_hash() for s in specs))
    rows = []
    for s in specs:
        facts = model_facts(s.family, s.depth, s.dataset, tuple(sorted(s.options.items())))
        rows.append(
            {
                "label": s.label,
                "seed": s.seed,
                "params": fmt_count(facts["params"]),
                "MFLOPs/sample": round(facts["flops"] / 1e6, 2),
                "skip layers": facts["skip_layers"],
                "already": "run {} ({})".format(*done[s.config_hash()]) if s.config_hash() in done else "",
            }
        )
    seconds, known = estimate(specs, data.runs(data.db_url(), status=("succeeded",), limit=2000))
    if known == len(specs):
        guess = f"about {fmt_seconds(seconds)} of worker time, from similar finished runs"
    elif known:
        guess = (f"about {fmt_seconds(seconds)} of worker time for {known} of them (from similar finished runs); "
                 f"no similar run has finished for the other {len(specs) - known}")  # fmt: skip
    else:
        guess = "no estimate yet: no similar run (family, depth, dataset, batch) has finished"
    st.write(f"**{len(specs)} runs** ({len(done)} already succeeded, running or queued) · {guess}")
    where(device)
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    force = st.checkbox("Run again the configurations that succeeded, are running or are queued", key=K + "force",
                        disabled=not done)  # fmt: skip
    queued = len(specs) if force else len(specs) - len(done)
    sure = True
    if queued > CONFIRM_ABOVE:  # a stray Enter in a depth picker once queued 20 runs
        sure = st.checkbox(f"Yes, queue {queued} runs", key=K + "sure", value=False)

    if st.button("Launch", type="primary", disabled=not writable or not sure, key=K + "go"):
        tags = [t.strip() for t in tags_text.split(",") if t.strip()]
        exp_title = title.strip() or f"{', '.join(families)} on {dataset}"
        surface = {"grid": int(landscape_grid)} if landscape else None
        do_submit(
            specs,
            title=exp_title,
            description=description,
            tags=tags,
            force=force,
            landscape=surface,
            story=st.session_state.get(K + "story"),
        )


DEVICES = {"auto": "auto (a GPU when its worker has one)", "cpu": "cpu", "cuda": "cuda (waits for a GPU worker)"}


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
