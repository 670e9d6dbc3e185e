"""Present page: a read-only, large-font view of one comparison for a talk or a shared screen.

Query parameters: ``story`` (a reproduction story, skipweb.ui.story_view, with optional ``exp``), or
``exp`` or ``runs`` (which runs), ``charts`` (comma list from CHARTS), ``title`` and
``notes`` (user text, always rendered as plain text), plus Compare's ``x``, ``smooth``, ``log``, ``fold``,
``metric`` and ``view`` (its open tab: the charts of that tab when ``charts`` is absent). Only the static CSS below goes through ``unsafe_allow_html``.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from skipweb import charts
from skipweb.charts import blocks as charts_blocks
from skipweb.ui import data, landscape_view, selection, story_view
from skipweb.ui.figures import first_of_each
from skipweb.ui.formatting import escape_md, run_context

CHARTS = ("curves", "heatmaps", "depth", "degradation", "params", "blocks", "landscape")
DEFAULT_CHARTS = ("curves", "heatmaps", "degradation")
# Compare's open tab (``view=``, skipweb.ui.compare.SECTIONS) → the charts that show it, for its "Present this view"
VIEW_CHARTS = {"curves": "curves", "gradients": "heatmaps,depth", "blocks": "blocks", "depth": "degradation,params",
               "landscape": "landscape"}  # fmt: skip
MAX_TEXT = 2000

# static, written here; never interpolated with user input
_CSS = """
<style>
.block-container {max-width: 100% !important; padding-top: 1rem; padding-left: 2rem; padding-right: 2rem;}
.block-container p, .block-container li, .block-container pre {font-size: 1.6rem !important;}
.block-container h1 {font-size: 3rem !important;}
header[data-testid="stHeader"] {display: none;}
section[data-testid="stSidebar"] {display: none;}
</style>
"""


def parse_charts(text: str | None) -> tuple[list[str], str | None]:
    """The chart names to show, and a message naming the unknown ones (they are skipped)."""
    if text is None:
        return list(DEFAULT_CHARTS), None
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in CHARTS]
    good = [n for n in dict.fromkeys(names) if n in CHARTS]
    msg = f"Unknown chart(s) {', '.join(map(repr, bad))}; choose from {', '.join(CHARTS)}." if bad else None
    return good, msg


def page() -> None:
    st.markdown(_CSS, unsafe_allow_html=True)
    params = {k: st.query_params[k] for k in st.query_params}
    if "story" in params:  # /present?story=<key>[&exp=<id>]: a reproduction story (skipweb.ui.story_view)
        story_view.page(params)
        return
    url = data.db_url()
    try:
        sel = selection.resolve(url, params)
    except Exception as e:  # unreachable / unmigrated database
        st.error(f"Cannot read the database ({type(e).__name__}): {str(e).splitlines()[0]}")
        return
    title = params.get("title", "")[:MAX_TEXT]
    exp = next((e for e in data.list_experiments(url) if e.id == sel.experiment_id), None)
    st.title(escape_md(title) or (escape_md(exp.title) if exp is not None else "") or "skipweb", anchor=False)
    if sel.runs:
        st.caption(run_context(sel.runs, exp))
    notes = params.get("notes", "")[:MAX_TEXT]
    if notes:
        st.text(notes)
    for msg in sel.errors:
        st.error(msg)
    for msg in sel.warnings:
        st.warning(msg)
    names, msg = parse_charts(params.get("charts", VIEW_CHARTS.get(params.get("view", ""))))
    if msg:
        st.warning(msg)
    if "exp" not in params and "runs" not in params:
        st.info(
            "Nothing to present: add `exp=<experiment id>` or `runs=<id,id,...>` to the link (Compare builds it)."
        )
        story_view.index()
        return
    if not sel.runs:
        st.info("No runs to show for this link.")
        return
    keys = data.metric_keys(url, data.ids([r.id for r in sel.runs]))
    for name in names:
        _chart(name, url, sel, keys)


def _chart(name: str, url: str, sel: selection.Selection, keys: list[str]) -> None:
    runs = sel.runs
    if name == "curves":
        key = (
            sel.metric
            if sel.metric in keys
            else (selection.DEFAULT_METRIC if selection.DEFAULT_METRIC in keys else None)
        )
        if key is None:
            st.info("No metrics logged yet.")
            return
        fig = selection.curve_figure(url, runs, key, sel.x, sel.smooth, sel.log, sel.fold)
    elif name in ("heatmaps", "depth"):
        grads, _ = selection.grad_data(url, runs)
        if not grads:
            st.info("No gradient probes recorded yet.")
            return
        if name == "heatmaps":  # one panel per configuration, as Compare's default: 12 do not read on a projector
            shown = first_of_each(list(grads))
            fig = selection.heatmaps_figure(url, runs, tuple(shown))
            if len(shown) < len(grads):
                st.caption(f"Gradient heatmaps of {len(shown)} of {len(grads)} runs: {escape_md(', '.join(shown))}.")
        else:
            fig = selection.depth_figure(url, runs)
    elif name == "blocks":  # skip/branch gradient ratio per block over training, one colour scale
        labels = selection.display_labels(runs)
        found = data.block_series(url, data.ids([r.id for r in runs]))
        series = {labels[r.id]: found[r.id] for r in runs if found.get(r.id)}
        if not series:
            st.info("No block probes recorded for these runs yet.")
            return
        fig = charts_blocks.block_heatmaps(dict(list(series.items())[:4]), "ratio")
    elif name == "landscape":  # the first two runs with a loss landscape, one colour scale
        pair = landscape_view.pair_figures(
            url, landscape_view.first_pair(url, runs), selection.display_labels(runs)
        )
        if pair is None:
            st.info("No run here has a loss landscape yet (Run detail: Compute landscape).")
            return
        fig = pair[0]
    else:
        finals = selection.final_figures(url, runs, selection.DEFAULT_METRIC)
        if left_out := selection.unfinished(runs):
            st.caption(f"Not finished, so not plotted as final: {escape_md(', '.join(left_out))}.")
        if finals is None:
            st.info("No run has a final test error yet.")
            return
        fig = finals[0] if name == "degradation" else finals[1]
    fig = charts.for_projector(go.Figure(fig))  # a copy: the figure may be shared with Compare's viewers
    st.plotly_chart(fig, key=f"present-{name}")
