"""Skip path vs branch, activations and gates per block: the Compare section and the Run detail section.

Data: db.blocks.read_blocks (recorded by skipweb.training.probes.BlockProbe every probe step). Figures:
skipweb.charts.blocks. Runs recorded before block probes existed, and torchvision reference nets
(whose blocks have no fork points), have no block data; the section says so rather than guessing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from db.blocks import BlockSeries
from skipweb import charts
from skipweb.charts import blocks as charts_blocks
from skipweb.ui import data
from skipweb.ui.figures import first_of_each, show

EXPLAIN = (
    "For each block, the gradient reaching its input is split into the part that came back **through "
    "the skip path** (identity, concatenation, highway carry or U-Net long skip) and the part that came "
    "back **through the block's own layers**; the two sum to dL/dx. A ratio above 1 (red) means the "
    "skip carries more of the gradient than the branch. Activations are those entering each block; a "
    "unit is dead when it is ≤ 0 for every example of the batch."
)


def views_for(series: Mapping[str, BlockSeries]) -> list[str]:
    """The views that have data for at least one run (no gate view without a highway net...)."""
    kinds = {b.kind for s in series.values() for b in s.layers}
    out = ["ratio"] if kinds - {"none"} else []
    out += ["skip_grad"] if kinds - {"none"} else []
    out += ["branch_grad", "act_dead", "act_mean", "act_std"]
    return out + (["gate"] if "gate" in kinds else [])


def compare_section(url: str, runs: Sequence[Any], labels: Mapping[int, str]) -> None:
    found = data.block_series(url, data.ids([r.id for r in runs]))
    series = {labels[r.id]: found[r.id] for r in runs if found.get(r.id)}
    if not series:
        st.info("No block probes recorded for these runs yet (they are recorded every probe step).")
        return
    missing = [labels[r.id] for r in runs if not found.get(r.id)]
    if missing:
        st.caption("No block probes for: " + ", ".join(missing) + " (torchvision nets, or not started).")
    st.caption(EXPLAIN)
    views = views_for(series)
    view = st.radio(
        "Show", views, format_func=charts_blocks.LABELS.__getitem__, horizontal=True, key="cmp_block_view"
    )
    names = list(series)
    picked = st.multiselect("Heatmaps for", names, default=first_of_each(names), key="cmp_block_runs")
    if picked:
        fig = charts_blocks.block_heatmaps({n: series[n] for n in picked}, view)
        fig.update_layout(height=420)
        show(fig, f"blocks-{view}", "blocks-heat")
    show(
        charts_blocks.block_profile(series, view, colors=charts.color_map(series)),
        f"blocks-{view}-profile",
        "blocks-profile",
    )


def run_section(url: str, run: Any) -> None:
    """One run: skip/branch ratio (or branch gradient for a no-skip net), dead units, and gates."""
    series = data.block_series(url, (run.id,)).get(run.id)
    st.subheader("Blocks")
    if not series:
        st.info("No block probes recorded for this run.")
        return
    st.caption(EXPLAIN)
    one = {run.label: series}
    views = [v for v in views_for(one) if v in ("ratio", "branch_grad", "act_dead", "gate")]
    if "ratio" in views:
        views.remove("branch_grad")
    cols = st.columns(len(views))
    for col, view in zip(cols, views, strict=True):
        with col:
            fig = charts_blocks.block_heatmaps(one, view)
            fig.update_layout(height=380, title=charts_blocks.LABELS[view])
            st.plotly_chart(fig, key=f"run-blocks-{view}")
