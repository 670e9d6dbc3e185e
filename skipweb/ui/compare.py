"""Compare page: curves, gradient-flow heatmaps, the degradation plot and a summary table for a set of runs.

The view lives in the URL (``exp`` or ``runs``, ``x``, ``smooth``, ``log``, ``fold``, ``metric``): opening
the same link reproduces it. Bad or stale values get a one-line message, never a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from skipweb.charts import curves as charts_curves
from skipweb.facts import metric_name
from skipweb.ui import blocks_view, data, landscape_view
from skipweb.ui.figures import first_of_each, show
from skipweb.ui.formatting import escape_md, fmt_seconds
from skipweb.ui.links import link
from skipweb.ui.selection import (
    DEFAULT_METRIC,
    FINAL_METRICS,
    Selection,
    curve_figure,
    depth_figure,
    display_labels,
    final_figures,
    grad_data,
    heatmaps_figure,
    resolve,
    table,
    unfinished,
)

LAUNCH_HINT = (
    "No runs yet. Launch some on the **Launch** page, or from a shell: "
    "`skipweb submit --families plain,resnet --depths 20,56 --seeds 0 --dataset digits`."
)


def _init_state(sel: Selection, params: dict[str, str]) -> None:
    """Widget state follows the URL whenever the URL changed from what this page last wrote."""
    ss = st.session_state
    if ss.get("_cmp_params") == params:
        return
    ss["cmp_mode"] = "runs" if sel.experiment_id is None and sel.runs else "experiment"
    ss["cmp_exp"] = sel.experiment_id
    ss["cmp_runs"] = [r.id for r in sel.runs] if sel.experiment_id is None else []
    ss["cmp_x"], ss["cmp_smooth"], ss["cmp_log"], ss["cmp_fold"] = sel.x, sel.smooth, sel.log, sel.fold
    if sel.metric:
        ss["cmp_metric"] = sel.metric
    ss["cmp_view"] = SECTIONS.get(params.get("view", ""), SECTIONS["curves"])


def _write_params(mode: str) -> None:
    ss = st.session_state
    new = {
        "x": ss["cmp_x"],
        "smooth": f"{ss['cmp_smooth']:g}",
        "log": str(int(ss["cmp_log"])),
        "fold": str(int(ss["cmp_fold"])),
    }
    if mode == "experiment" and ss.get("cmp_exp") is not None:
        new["exp"] = str(ss["cmp_exp"])
    elif mode == "runs" and ss.get("cmp_runs"):
        new["runs"] = ",".join(map(str, ss["cmp_runs"]))
    if ss.get("cmp_metric"):
        new["metric"] = ss["cmp_metric"]
    view = {label: slug for slug, label in SECTIONS.items()}.get(ss.get("cmp_view"), "curves")
    if view != "curves":
        new["view"] = view
    if dict(st.query_params) != new:
        st.query_params.from_dict(new)
    ss["_cmp_params"] = new


def page() -> None:
    st.title("Compare runs")
    url = data.db_url()
    try:
        exps = data.list_experiments(url)
        everything = data.all_runs(url)
    except Exception as e:  # unreachable / unmigrated database: one line, not a traceback
        st.error(f"Cannot read the database ({type(e).__name__}): {str(e).splitlines()[0]}")
        return
    if not everything:
        st.info(LAUNCH_HINT)
        return
    _read_url(url, exps)
    mode = _sidebar(exps, everything)
    runs, keys = _chosen(url, mode)
    _write_params(mode)
    if not runs:
        st.info("Pick an experiment or some runs in the sidebar.")
        return
    # the projector view of this selection, with the same view options (Present reads Compare's params)
    shown = {
        k: v
        for k, v in st.query_params.items()
        if k in ("exp", "runs", "x", "smooth", "log", "fold", "metric", "view")
    }
    link("present", "Present this view", **shown)
    if not keys:
        st.info(
            f"{len(runs)} run(s) selected, none has logged metrics yet (queued?). This page refreshes on rerun."
        )
        return
    render(url, runs, keys)


def _read_url(url: str, exps: Sequence[Any]) -> None:
    """The selection the URL names, its errors and warnings shown; widget state follows it (_init_state)."""
    params = {k: st.query_params[k] for k in st.query_params}
    sel = resolve(url, params)
    if len(exps) == 1 and "exp" not in params and "runs" not in params:
        sel.experiment_id = exps[0].id  # the only experiment: nothing to pick
        sel.runs = data.experiment_runs(url, sel.experiment_id)
    for msg in sel.errors:
        st.error(msg)
    for msg in sel.warnings:
        st.warning(msg)
    if params.get("view", "curves") not in SECTIONS:
        st.warning(f"Unknown view {params['view']!r}; choose one of {', '.join(SECTIONS)}. Showing curves.")
    _init_state(sel, params)


def _sidebar(exps: Sequence[Any], everything: Sequence[Any]) -> str:
    """The sidebar's choice of runs and view options; returns the mode ("experiment" or "runs")."""
    with st.sidebar:
        mode = st.radio("Choose", ["experiment", "runs"], key="cmp_mode", horizontal=True)
        if mode == "experiment":
            exp_titles = {e.id: f"#{e.id} {e.title}" for e in exps}
            st.selectbox(
                "Experiment",
                list(exp_titles),
                key="cmp_exp",
                format_func=exp_titles.get,
                placeholder="pick an experiment",
            )
        else:
            run_names = {r.id: f"#{r.id} {r.label} (seed {r.seed}, {r.status})" for r in everything}
            for rid in st.session_state.get("cmp_runs", []):  # runs older than the list's limit
                run_names.setdefault(rid, f"#{rid}")
            st.multiselect("Runs", list(run_names), key="cmp_runs", format_func=run_names.get)
        st.radio("x-axis", list(charts_curves.X_AXES), key="cmp_x", horizontal=True)
        st.slider("Smoothing (EMA)", 0.0, 0.99, step=0.01, key="cmp_smooth")
        st.toggle("Log y-axis", key="cmp_log")
        st.toggle("Fold seeds (mean ± std)", key="cmp_fold")
    return mode


def _chosen(url: str, mode: str) -> tuple[Sequence[Any], Sequence[str]]:
    """The chosen runs and the metric keys they logged; the sidebar's metric picker when there are any."""
    ss = st.session_state
    if mode == "experiment":
        runs = data.experiment_runs(url, ss["cmp_exp"]) if ss.get("cmp_exp") is not None else []
    else:
        runs = data.runs_by_id(url, data.ids(ss.get("cmp_runs", []))) if ss.get("cmp_runs") else []
    keys = data.metric_keys(url, data.ids([r.id for r in runs])) if runs else []
    if keys and ss.get("cmp_metric") not in keys:
        if ss.get("cmp_metric"):
            st.warning(f"Metric {ss['cmp_metric']!r} is not logged by these runs; showing another.")
        ss["cmp_metric"] = DEFAULT_METRIC if DEFAULT_METRIC in keys else keys[0]
    if keys:  # in the sidebar, so that it keeps its value while another tab is open
        st.sidebar.selectbox("Metric", list(keys), key="cmp_metric", format_func=metric_name)
    return runs, keys


# Compare's sections, one tab each; only the open tab is computed and drawn, so a new browser tab lays out
# one or two charts instead of seven (bench/page_speed.py). ``view=`` in the URL names the open one.
SECTIONS = {"curves": "Curves", "gradients": "Gradient flow", "blocks": "Skip path vs branch",
            "depth": "Depth and size", "landscape": "Loss landscape"}  # fmt: skip


def render(url: str, runs: Sequence[Any], keys: Sequence[str]) -> None:
    st.caption(f"{len(runs)} runs: " + escape_md(", ".join(sorted({r.label for r in runs}))))
    sections = {
        "curves": lambda: _curves(url, runs),
        "gradients": lambda: _gradients(url, runs),
        "blocks": lambda: blocks_view.compare_section(url, runs, display_labels(runs)),
        "depth": lambda: _depth(url, runs),
        "landscape": lambda: landscape_view.compare_section(url, runs, display_labels(runs)),
    }
    tabs = st.tabs(list(SECTIONS.values()), key="cmp_view", on_change="rerun")
    for slug, tab in zip(SECTIONS, tabs, strict=True):
        if tab.open:
            with tab:
                sections[slug]()


def _curves(url: str, runs: Sequence[Any]) -> None:
    ss = st.session_state
    fig = curve_figure(
        url, runs, ss["cmp_metric"], ss["cmp_x"], ss["cmp_smooth"], ss["cmp_log"], ss["cmp_fold"]
    )
    show(fig, "curves", "curves")
    st.caption(
        f"Series longer than {charts_curves.MAX_POINTS:,} points are shown as means of consecutive-step buckets."
    )
    _summary(url, runs)


def _gradients(url: str, runs: Sequence[Any]) -> None:
    grads, _ = grad_data(url, runs)
    if not grads:
        st.info("No gradient probes recorded for these runs yet.")
        return
    names = list(grads)
    picked = st.multiselect("Heatmaps for", names, default=first_of_each(names), key="cmp_heat_runs")
    if picked:
        show(heatmaps_figure(url, runs, tuple(picked)), "grad-heatmaps", "heat")
    lo = min(int(s[0]) for s, _ in grads.values())
    hi = max(int(s[-1]) for s, _ in grads.values())
    step = st.slider("Probe step", lo, hi, hi, key="cmp_step") if hi > lo else hi
    show(depth_figure(url, runs, step), "grad-vs-depth", "depth")


def _depth(url: str, runs: Sequence[Any]) -> None:
    which = st.radio("Final", list(FINAL_METRICS), horizontal=True, key="cmp_final")
    if left_out := unfinished(runs):
        st.caption(f"Not finished, so not plotted as final: {escape_md(', '.join(left_out))}.")
    if finals := final_figures(url, runs, FINAL_METRICS[which]):
        c1, c2 = st.columns(2)
        with c1:
            show(finals[0], "degradation", "degradation")
        with c2:
            show(finals[1], "error-vs-params", "params")
    else:
        st.info(f"No run has a final {which} yet.")


def _summary(url: str, runs: Sequence[Any]) -> None:
    st.subheader("Summary")
    df = table(url, runs)
    # read like a product: 272k params, 41M FLOPs, 1m23s; the CSV below keeps the raw numbers
    shown = df.assign(**{"time (s)": df["time (s)"].map(fmt_seconds)}).rename(columns={"time (s)": "time"})
    number = st.column_config.NumberColumn
    st.dataframe(shown, hide_index=True, key="cmp_table", column_config={
        "params": number(format="compact"), "FLOPs": number(format="compact"), "samples/s": number(format="%.0f"),
        **{c: number(format="%.4f") for c in ("best test error", "final test error", "final train error")},
    })  # fmt: skip
    st.download_button(
        "Download table (CSV)",
        df.to_csv(index=False),
        file_name="summary.csv",
        mime="text/csv",
        on_click="ignore",
        key="dl-csv",
    )
