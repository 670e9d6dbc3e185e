"""Loss landscapes on the dashboard: a run's surface, its jobs and the Compute button (Run detail), and two
runs side by side on one colour scale (Compare, Present).

The button follows the house data flow: it writes a ``landscape_jobs`` row and publishes its id; a worker
computes the landscape and stores it; these sections read it back. Nothing heavy runs in the web process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from skipweb import facts
from skipweb.charts.landscape import interp_figure, landscape_figures
from skipweb.ui import data
from skipweb.ui.auth import can_write
from skipweb.ui.formatting import escape_md
from skipweb.ui.links import link

HOW = (
    "Compute one with **Compute landscape** on the run's Run detail page, or from a shell: "
    "`skipweb landscape {run}` (add `--queue` to send it to the workers). Launch can also ask for one after "
    "training (**Loss landscape after training**)."
)


# ---- cached reads ------------------------------------------------------------------------------------------
def describe(land: Any) -> str:
    subset = "all" if land.subset is None else f"{land.subset}"
    return (
        f"{land.grid}×{land.grid} grid over ±{land.range:g} (filter-normalized directions, seed {land.seed}); "
        f"loss over {subset} training samples, BatchNorm in eval mode; computed {land.created_at:%Y-%m-%d %H:%M} UTC."
    )


# ---- Run detail ----------------------------------------------------------------------------------------------
def run_section(run: Any) -> None:
    """Run detail: the run's surface (contour + 3-D) and init→final line, its jobs, the Compute button."""
    st.subheader("Loss landscape")
    url = data.db_url()
    land = data.landscape_slices(url, (run.id,)).get(run.id)
    if land is None:
        st.info("No loss landscape for this run yet.")
    else:
        contour, surface = landscape_figures({run.label: land})
        st.plotly_chart(contour, key="landscape_contour")
        st.plotly_chart(surface, key="landscape_surface")
        st.caption(describe(land))
        line = data.landscape_slices(url, (run.id,), "interp").get(run.id)
        if line is not None:
            st.plotly_chart(
                interp_figure({run.label: list(zip(line.x, line.loss, strict=True))}), key="landscape_interp"
            )
            st.caption("Loss along the straight line from the initial (α = 0) to the final (α = 1) weights.")
    compute_form(run)
    watch_jobs(url, run.id)


WAITING = ("pending", "queued", "running")


def watch_jobs(url: str, run_id: int) -> None:
    """The run's jobs; while the newest is waiting, checked every 2 s, and the page reruns (drawing the new
    landscape) as soon as it ends: no reload needed."""
    found = data.landscape_jobs_of(url, run_id)
    waiting = bool(found) and found[0].status in WAITING

    @st.fragment(run_every="2s" if waiting else None)
    def jobs() -> None:
        now = data.landscape_jobs_of(url, run_id) if waiting else found
        jobs_table(now)
        if waiting and now and now[0].status not in WAITING:
            st.rerun()  # the job ended: redraw the whole page with its landscape (or its failure)

    jobs()


def compute_form(run: Any) -> None:
    from skipweb.services.landscapes import landscape_blocker

    why = landscape_blocker(run)
    writable = can_write()
    with st.form("landscape_form"):
        c1, c2 = st.columns(2)
        grid = c1.number_input(
            "Grid (N×N)",
            3,
            101,
            facts.LANDSCAPE_GRID,
            key="landscape_grid",
            help="odd: the centre is the final weights",
        )
        range_ = c2.number_input(
            "Range ±R", 0.01, 10.0, facts.LANDSCAPE_RANGE, key="landscape_range", help="filter-normalized units"
        )
        go_ = st.form_submit_button(
            "Compute landscape", type="primary", key="landscape_go", disabled=why is not None or not writable
        )
    if why is not None:
        st.caption(f"Compute landscape needs a finished run with a checkpoint: {why}.")
    elif not writable:
        st.caption("Sign in (sidebar) to compute a landscape.")
    if go_:
        request(run.id, grid=int(grid), range_=float(range_))


def request(run_id: int, **params) -> None:
    """Write the job and publish it (skipweb.services.landscapes.request_landscape); say what happened."""
    from skipweb.services.landscapes import request_landscape
    from skipweb.spec import SpecError

    try:
        req = request_landscape(run_id, db=data.db_url(), celery=data.celery_app(), **params)
    except SpecError as e:
        st.error(str(e).splitlines()[0])
        return
    data.clear()
    st.success(f"Landscape job {req.job_id} queued: a worker computes it and this page shows it when stored.")
    if req.warning:
        st.warning(req.warning)


def jobs_table(found: Sequence[Any]) -> None:
    if not found:
        return
    newest = found[0]
    if newest.status == "failed":
        st.error(f"Landscape job {newest.id} failed: {escape_md(newest.reason or 'no reason recorded')}")
    elif newest.status == "pending":
        st.info(f"Landscape job {newest.id} is pending: it is queued when the run succeeds.")
    elif newest.status in ("queued", "running"):
        st.info(f"Landscape job {newest.id} is {newest.status}: the landscape appears here when it is stored "
                "(checked every 2 s).")  # fmt: skip
    rows = [
        {
            "job": j.id,
            "status": j.status,
            "grid": j.grid,
            "range": j.range,
            "subset": j.subset,
            "seed": j.seed,
            "created": str(j.created_at)[:19],
            "finished": str(j.finished_at)[:19] if j.finished_at else "",
            "reason": j.reason or "",
        }
        for j in found
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="landscape_jobs")


# ---- Compare and Present ---------------------------------------------------------------------------------------
def pair_figures(
    url: str, run_ids: Sequence[int], labels: Mapping[int, str]
) -> tuple[go.Figure, go.Figure] | None:
    """(contours, surfaces) of the given runs' landscapes on ONE colour scale; None when none has one."""
    have = data.landscape_slices(url, tuple(sorted(set(run_ids))))
    chosen = {labels[r]: have[r] for r in run_ids if r in have}
    return landscape_figures(chosen) if chosen else None


def first_pair(url: str, runs: Sequence[Any]) -> list[int]:
    """The first two runs (in the given order) that have a 2-D landscape."""
    have = data.landscape_slices(url, tuple(sorted({r.id for r in runs})))
    return [r.id for r in runs if r.id in have][:2]


def compare_section(url: str, runs: Sequence[Any], labels: Mapping[int, str]) -> None:
    """Compare: which runs have a landscape; two of them side by side on one colour scale."""
    have = data.landscape_slices(url, tuple(sorted({r.id for r in runs})))
    with_one = [r.id for r in runs if r.id in have]
    lacking = [r for r in runs if r.id not in have]
    if with_one:
        picked = st.multiselect(
            "Side by side (one colour scale)",
            with_one,
            default=with_one[:2],
            max_selections=2,
            format_func=lambda i: labels[i],
            key="cmp_landscape_runs",
        )
        figs = pair_figures(url, picked, labels) if picked else None
        if figs is not None:
            st.plotly_chart(figs[0], key="cmp_landscape_contour")
            st.plotly_chart(figs[1], key="cmp_landscape_surface")
            scales = {(have[r].grid, have[r].range) for r in picked}
            if len(scales) > 1:
                st.warning(
                    "These landscapes use different grids or ranges: compare the axes, not just the colours."
                )
            st.caption(describe(have[picked[0]]) + " One colour scale for both panels; log10 of the loss.")
    if lacking:
        active = data.latest_landscape_jobs(url, tuple(r.id for r in lacking))
        names = []
        for r in lacking:
            job = active.get(r.id)
            state = f" (job {job.id} {job.status})" if job and job.status != "succeeded" else ""
            names.append(f"#{r.id} {escape_md(labels.get(r.id, r.label))}{state}")
        st.info(f"No loss landscape yet for {', '.join(names)}. " + HOW.format(run=lacking[0].id))
        link("run", f"Run detail of run {lacking[0].id}", run=lacking[0].id)
