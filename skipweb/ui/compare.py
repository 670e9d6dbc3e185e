"""Compare page: curves, gradient-flow heatmaps, the degradation plot and a summary table for a set of runs.

The view lives in the URL (``exp`` or ``runs``, ``x``, ``smooth``, ``log``, ``fold``, ``metric``): opening
the same link reproduces it. Bad or stale values get a one-line message, never a traceback.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from skipweb import charts
from skipweb.ui import blocks_view, landscape_view
from skipweb.ui import compare_data as data

LAUNCH_HINT = (
    "No runs yet. Launch some on the **Launch** page, or from a shell: "
    "`skipweb submit --families plain,resnet --depths 20,56 --seeds 0 --dataset digits`."
)
DEFAULT_METRIC = "test/error"
FINAL_METRICS = {"test error": "test/error", "train error": "epoch/train_error"}
HAS_KALEIDO = importlib.util.find_spec("kaleido") is not None


# ---- query parameters ----------------------------------------------------------------------------------
@dataclass
class Selection:
    """What the URL asked for, validated: the runs to show and the view options, plus messages."""

    runs: list[Any] = field(default_factory=list)
    experiment_id: int | None = None
    x: str = "step"
    smooth: float = 0.0
    log: bool = False
    fold: bool = False
    metric: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_int_list(text: str) -> list[int]:
    """'3,4, 5' → [3, 4, 5]; raises ValueError naming the first item that is not an integer."""
    out = []
    for item in (t.strip() for t in text.split(",")):
        if item:
            try:
                out.append(int(item))
            except ValueError:
                raise ValueError(f"{item!r} is not an integer run id") from None
    return out


def _bool(text: str) -> bool | None:
    return {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}.get(text.lower())


def resolve(url: str, params: Mapping[str, str]) -> Selection:
    """Validate the query parameters against the database; never raises for bad user input."""
    sel = Selection()
    exp, runs = params.get("exp"), params.get("runs")
    if exp is not None and runs is not None:
        sel.warnings.append("Both `exp` and `runs` are in the link; showing the runs.")
    if runs is not None:
        try:
            wanted = parse_int_list(runs)
        except ValueError as e:
            sel.errors.append(f"Bad `runs` parameter: {e}. Use comma-separated run ids, e.g. `runs=3,4`.")
            wanted = []
        if wanted:
            sel.runs = data.runs_by_id(url, data.ids(wanted))
            missing = sorted(set(wanted) - {r.id for r in sel.runs})
            if missing:
                sel.warnings.append(f"Unknown run id(s) {', '.join(map(str, missing))}: not shown.")
    elif exp is not None:
        try:
            sel.experiment_id = int(exp)
        except ValueError:
            sel.errors.append(f"Bad `exp` parameter {exp!r}: it must be an experiment id (an integer).")
        if sel.experiment_id is not None:
            if sel.experiment_id not in {e.id for e in data.list_experiments(url)}:
                sel.warnings.append(f"Experiment {sel.experiment_id} does not exist (deleted?).")
                sel.experiment_id = None
            else:
                sel.runs = data.experiment_runs(url, sel.experiment_id)
    if (x := params.get("x")) is not None:
        if x in charts.X_AXES:
            sel.x = x
        else:
            sel.warnings.append(
                f"Unknown x-axis {x!r}; choose one of {', '.join(charts.X_AXES)}. Using step."
            )
    if (sm := params.get("smooth")) is not None:
        try:
            sel.smooth = float(sm)
            if not 0 <= sel.smooth <= 0.99:
                raise ValueError
        except ValueError:
            sel.smooth = 0.0
            sel.warnings.append(f"Bad `smooth` {sm!r}: a number from 0 to 0.99. Using 0.")
    for name in ("log", "fold"):
        if (v := params.get(name)) is not None:
            b = _bool(v)
            if b is None:
                sel.warnings.append(f"Bad `{name}` {v!r}: use 1 or 0.")
            setattr(sel, name, bool(b))
    sel.metric = params.get("metric")
    return sel


# ---- building the figures (no widgets: also used by Present and the benchmark) -----------------------
def display_labels(runs: Sequence[Any]) -> dict[int, str]:
    """run id → a unique, readable name: the label, plus the seed where labels repeat."""
    counts = pd.Series([r.label for r in runs]).value_counts()
    return {r.id: r.label if counts[r.label] == 1 else f"{r.label} · seed {r.seed}" for r in runs}


def curve_figure(
    url: str, runs: Sequence[Any], key: str, x: str, smooth: float, log: bool, fold: bool
) -> go.Figure:
    rids = data.ids([r.id for r in runs])
    df = data.metric_display(url, rids, key, charts.MAX_POINTS)
    labels = {r.id: r.label for r in runs} if fold else display_labels(runs)
    return charts.curves(
        df,
        key,
        labels,
        x=x,
        smoothing=smooth,
        log_y=log,
        fold=fold,
        groups={r.id: charts.config_group(r.spec) for r in runs},
        batch_sizes={r.id: int(r.spec.get("batch_size", 1)) for r in runs},
        colors=charts.color_map(labels.values()),
    )


def grad_data(url: str, runs: Sequence[Any]) -> tuple[dict[str, tuple], dict[str, list]]:
    rids = data.ids([r.id for r in runs])
    mats, layers = data.grad_matrices(url, rids), data.probe_layers(url, rids)
    names = display_labels(runs)
    grads = {names[r.id]: mats[r.id] for r in runs if len(mats.get(r.id, ((),))[0])}
    return grads, {names[r.id]: layers.get(r.id, []) for r in runs}


def final_rows(runs: Sequence[Any], latest: Mapping[int, Mapping[str, float]], metric: str) -> list[dict]:
    rows = []
    for r in runs:
        value = latest.get(r.id, {}).get(metric)
        if value is not None:
            fam = charts.series_name(r.label, r.depth)
            rows.append(
                {"family": fam, "depth": r.depth, "label": r.label, "params": r.params, "value": value}
            )
    return rows


def table(url: str, runs: Sequence[Any]) -> pd.DataFrame:
    rids = data.ids([r.id for r in runs])
    return charts.summary_table(
        runs, data.latest_values(url, rids), data.metric_frame(url, rids, ("test/error",))
    )


def download_html(fig: go.Figure, name: str, key: str) -> None:
    """Self-contained interactive HTML (plotly.js inlined), generated only when clicked."""
    st.download_button(
        f"Download {name} (HTML)",
        data=lambda: fig.to_html(include_plotlyjs=True, full_html=True),
        file_name=f"{name}.html",
        mime="text/html",
        key=f"dl-html-{key}",
        on_click="ignore",
    )
    if HAS_KALEIDO:
        st.download_button(
            f"Download {name} (PNG)",
            data=lambda: fig.to_image(format="png"),
            file_name=f"{name}.png",
            mime="image/png",
            key=f"dl-png-{key}",
            on_click="ignore",
        )


def show(fig: go.Figure, name: str, key: str) -> None:
    st.plotly_chart(fig, key=f"chart-{key}")
    download_html(fig, name, key)


# ---- the page -------------------------------------------------------------------------------------------
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
    params = {k: st.query_params[k] for k in st.query_params}
    sel = resolve(url, params)
    for msg in sel.errors:
        st.error(msg)
    for msg in sel.warnings:
        st.warning(msg)
    _init_state(sel, params)

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
        st.radio("x-axis", list(charts.X_AXES), key="cmp_x", horizontal=True)
        st.slider("Smoothing (EMA)", 0.0, 0.99, step=0.01, key="cmp_smooth")
        st.toggle("Log y-axis", key="cmp_log")
        st.toggle("Fold seeds (mean ± std)", key="cmp_fold")

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
    _write_params(mode)
    if not runs:
        st.info("Pick an experiment or some runs in the sidebar.")
        return
    if not keys:
        st.info(
            f"{len(runs)} run(s) selected, none has logged metrics yet (queued?). This page refreshes on rerun."
        )
        return
    render(url, runs, keys)


def render(url: str, runs: Sequence[Any], keys: Sequence[str]) -> None:
    ss = st.session_state
    st.caption(f"{len(runs)} runs: " + ", ".join(sorted({r.label for r in runs})))
    st.subheader("Curves")
    st.selectbox("Metric", list(keys), key="cmp_metric")
    fig = curve_figure(
        url, runs, ss["cmp_metric"], ss["cmp_x"], ss["cmp_smooth"], ss["cmp_log"], ss["cmp_fold"]
    )
    show(fig, "curves", "curves")
    st.caption(
        f"Series longer than {charts.MAX_POINTS:,} points are shown as means of consecutive-step buckets."
    )

    st.subheader("Gradient flow")
    grads, layers = grad_data(url, runs)
    if not grads:
        st.info("No gradient probes recorded for these runs yet.")
    else:
        names = list(grads)
        picked = st.multiselect("Heatmaps for", names, default=names[:4], key="cmp_heat_runs")
        if picked:
            hm = charts.grad_heatmaps({n: grads[n] for n in picked}, layers)
            hm.update_layout(height=450)
            show(hm, "grad-heatmaps", "heat")
        lo = min(int(s[0]) for s, _ in grads.values())
        hi = max(int(s[-1]) for s, _ in grads.values())
        step = st.slider("Probe step", lo, hi, hi, key="cmp_step") if hi > lo else hi
        show(charts.grad_vs_depth(grads, step, colors=charts.color_map(grads)), "grad-vs-depth", "depth")

    blocks_view.compare_section(url, runs, display_labels(runs))

    st.subheader("Depth and size")
    latest = data.latest_values(url, data.ids([r.id for r in runs]))
    which = st.radio("Final", list(FINAL_METRICS), horizontal=True, key="cmp_final")
    rows = final_rows(runs, latest, FINAL_METRICS[which])
    if rows:
        c1, c2 = st.columns(2)
        with c1:
            show(charts.final_error_vs_depth(rows, FINAL_METRICS[which]), "degradation", "degradation")
        with c2:
            show(charts.error_vs_params(rows, FINAL_METRICS[which]), "error-vs-params", "params")
    else:
        st.info(f"No run has a final {which} yet.")

    landscape_view.compare_section(url, runs, display_labels(runs))

    st.subheader("Summary")
    df = table(url, runs)
    st.dataframe(df, hide_index=True, key="cmp_table")
    st.download_button(
        "Download table (CSV)",
        df.to_csv(index=False),
        file_name="summary.csv",
        mime="text/csv",
        on_click="ignore",
        key="dl-csv",
    )
