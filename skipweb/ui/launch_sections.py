"""The Launch form, section by section: presets, models, data and recipe, experiment (its widgets only).

Every choice a widget offers comes from where it is declared: the families and their options from the
registry (skipweb.models), the optimizer, schedule, device and precision from RunSpec's fields
(skipweb.spec), the datasets from skipweb.data. A new option or family shows here by being declared.
The page (skipweb.ui.launch) validates what the form holds, previews the grid and submits it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from skipweb import facts
from skipweb.data import get_dataset_info, list_datasets
from skipweb.models import OPTION_HELP, declared_options, get_info, list_models
from skipweb.recipes import recipe_for
from skipweb.spec import RunSpec, choices
from skipweb.ui.launch_form import OPTION_LABELS
from skipweb.ui.links import link

K = "launch_"  # session-state prefix of this page's widgets
DEPTH_LIMIT = 200
FORM_FIELDS = ("epochs", "batch_size", "optimizer", "lr", "schedule", "warmup_epochs")
BASE_DEFAULTS = {
    **{k: v for k, v in recipe_for("digits").fields().items() if k in FORM_FIELDS},
    "seeds": "0",  # story presets fill 0,1,2
    "probe_every": 10,
    "device": "auto",
    "amp": "none",
    "landscape": False,
    "landscape_grid": facts.LANDSCAPE_GRID,
    "title": "",
    "tags": "",
    "description": "",
}
DEVICE_LABELS = {"auto": "auto (a GPU when its worker has one)", "cuda": "cuda (waits for a GPU worker)"}


@dataclass
class Form:
    """What the form holds after this rerun: the grid's choices and the experiment's text."""

    families: list[str]
    options: dict[str, list] = field(default_factory=dict)  # empty list: each family's default
    depths: dict[str, list[int]] = field(default_factory=dict)
    dataset: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # the RunSpec fields the form sets, as typed
    seeds: str = "0"
    landscape: bool = False
    landscape_grid: int = facts.LANDSCAPE_GRID
    title: str = ""
    tags: str = ""
    description: str = ""

    @property
    def tasks(self) -> set[str]:
        return {get_info(f).task for f in self.families}


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


def form(presets: dict[str, dict]) -> Form:
    """Draw every section; what they hold."""
    preset_buttons(presets)
    chosen = models()
    data_and_recipe(chosen)
    experiment(chosen)
    return chosen


def preset_buttons(presets: dict[str, dict]) -> None:
    st.subheader("Presets")
    per_row = 4  # seven presets in one row truncated their names
    items = list(presets.items())
    cols = [c for i in range(0, len(items), per_row) for c in st.columns(per_row)][: len(items)]
    for col, (name, preset) in zip(cols, items, strict=True):
        col.button(name, key=f"preset_{name}", help=preset["help"], on_click=apply_preset, args=(preset,),
                   width="stretch")  # fmt: skip
    if story := st.session_state.get(K + "story"):
        st.caption(
            f"Reproduction story: tagged `story:{story}` and titled with the story, so the Present page's "
            "story view computes its findings from these runs (keep the tag)."
        )
        link("present", "Open the story view", story=story)


def models() -> Form:
    """Families, the options they declare (several values: every combination), and each family's depths."""
    st.subheader("Models")
    families = st.multiselect(
        "Families", list_models(), key=K + "families", help="in registry order; one column of the grid each"
    )
    chosen = Form(families)
    declared = declared_options(families)  # the chosen families' options, in first-seen order
    if declared:
        st.caption("Options (leave empty for each family's default; several values run every combination)")
        ocols = st.columns(min(4, len(declared)))
        for i, (name, (allowed, owners)) in enumerate(declared.items()):
            defaults = {str(get_info(f).defaults.get(name)) for f in owners}
            about = f"{OPTION_HELP[name]}; " if name in OPTION_HELP else ""
            chosen.options[name] = ocols[i % len(ocols)].multiselect(
                OPTION_LABELS.get(name, name.replace("_", " ")), allowed, key=K + f"opt_{name}",
                help=f"{about}declared by {', '.join(owners)}; default {', '.join(sorted(defaults))}",
            )  # fmt: skip
    if families:
        for col, fam in zip(st.columns(len(families)), families, strict=True):
            chosen.depths[fam] = depth_picker(col, fam, chosen.options)
    return chosen


def depth_picker(col, family: str, options: dict[str, list]) -> list[int]:
    """The depths the family takes with the first chosen value of each of its options (and its examples)."""
    info = get_info(family)
    first = {k: v[0] for k, v in options.items() if v and k in info.options}
    offered = sorted(set(info.valid_depths(first, DEPTH_LIMIT)) | set(info.example_depths))
    key = K + f"depths_{family}"
    if key in st.session_state:  # keep a preset's choice only where it is offered
        st.session_state[key] = [d for d in st.session_state[key] if d in offered]
    return col.multiselect(f"{family} depths", offered, key=key,
                           help=f"{info.depth_rule}; examples {info.example_depths}")  # fmt: skip


def _about(name: str) -> str | None:
    return RunSpec.model_fields[name].description


def data_and_recipe(chosen: Form) -> None:
    """The dataset (its recipe fills the recipe fields), the recipe, the seeds, the device and precision."""
    st.subheader("Data and recipe")
    tasks = chosen.tasks
    datasets = [d for d in list_datasets() if not tasks or get_dataset_info(d).task in tasks]
    c1, c2, c3, c4 = st.columns(4)
    chosen.dataset = c1.selectbox("Dataset", datasets, key=K + "dataset", on_change=apply_recipe,
                                  format_func=lambda d: f"{d} ({get_dataset_info(d).task})",
                                  help="choosing a dataset fills the recipe fields with its default recipe")  # fmt: skip
    if chosen.dataset:
        c1.caption(get_dataset_info(chosen.dataset).summary)
    f = chosen.fields
    f["epochs"] = c2.number_input("Epochs", key=K + "epochs", step=1, help=_about("epochs"))
    f["batch_size"] = c3.number_input("Batch size", key=K + "batch_size", step=1, help=_about("batch_size"))
    f["optimizer"] = c4.selectbox("Optimizer", choices("optimizer"), key=K + "optimizer", help=_about("optimizer"))
    f["lr"] = c1.number_input("Learning rate", format="%.4g", key=K + "lr", step=0.005, help=_about("lr"))
    f["schedule"] = c2.selectbox("Schedule", choices("schedule"), key=K + "schedule", help=_about("schedule"))
    chosen.seeds = c3.text_input("Seeds", key=K + "seeds", help="comma-separated, e.g. 0,1,2")
    f["probe_every"] = c4.number_input("Probe every N steps", key=K + "probe_every", step=1,
                                       help=_about("probe_every"))  # fmt: skip
    f["warmup_epochs"] = c4.number_input("Warm-up epochs", step=0.5, key=K + "warmup_epochs",
                                         help=_about("warmup_epochs"))  # fmt: skip
    if chosen.dataset:
        recipe_note(chosen.dataset)
    f["device"] = c1.radio("Device", choices("device"), key=K + "device", horizontal=True,
                           format_func=lambda d: DEVICE_LABELS.get(d, d), help=_about("device"))  # fmt: skip
    f["amp"] = c4.selectbox("Mixed precision", choices("amp"), key=K + "amp", help=_about("amp"))
    chosen.landscape = c2.checkbox("Loss landscape after training", key=K + "landscape",
                                   help="a worker computes it when a run succeeds")  # fmt: skip
    chosen.landscape_grid = c3.number_input("Landscape grid", key=K + "landscape_grid", step=2,
                                            disabled=not chosen.landscape, help="N: an N×N grid")  # fmt: skip


def recipe_note(dataset: str) -> None:
    """The dataset's default recipe, where the form differs from it, and a button back to it."""
    recipe = recipe_for(dataset)
    differs = [k for k, v in recipe.fields().items() if k in FORM_FIELDS and st.session_state.get(K + k) != v]
    note = f" This form differs in: {', '.join(differs)}." if differs else ""
    st.caption(f"Default recipe for {dataset}: {recipe.describe()}{note}")
    if differs:
        st.button("Use the dataset's recipe", key=K + "recipe_reset", on_click=apply_recipe)


def experiment(chosen: Form) -> None:
    st.subheader("Experiment")
    chosen.title = st.text_input("Title", key=K + "title", placeholder="what this experiment asks")
    chosen.tags = st.text_input("Tags", key=K + "tags", help="comma-separated")
    chosen.description = st.text_area("Description", key=K + "description")
