"""Runs page: experiments and their runs, live while anything is queued or running; cancel, retry, delete.

Filters come from the query string too (``?exp=3&family=resnet&status=failed&tag=demo``) so a link
reproduces the view. The table refreshes itself every 2 s only while some run is still active.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from db.errors import RunNotFound, RunStateError
from db.records import RUN_STATUSES
from skipweb.facts import ACTIVE_STATUSES, ERROR_KEYS
from skipweb.models import list_models
from skipweb.services import presence
from skipweb.ui import data
from skipweb.ui.auth import can_write, write_denied_note
from skipweb.ui.formatting import escape_md, fmt_seconds
from skipweb.ui.links import int_param, link, story_links, str_param

ACTIVE = ACTIVE_STATUSES


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _naive(t: datetime | None) -> datetime | None:
    return None if t is None else (t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t)


def waiting_reason(r, connected_now) -> str | None:
    try:
        device = r.spec.get("device")
    except ValueError:  # a malformed stored spec
        device = None
    return presence.waiting_reason(device, connected_now)


def latest_error(latest: dict[str, float]) -> float | None:
    """The run's newest test error: the first error-like key it logged."""
    for key in ERROR_KEYS:
        if key in latest:
            return latest[key]
    return None


def run_rows(runs, connected_now=()) -> pd.DataFrame:
    """One row per run: status, progress, epoch, latest test error, worker, device, elapsed and ETA; a queued
    run that no connected worker takes says what it waits for (``connected_now``: services.presence)."""
    now = _now()
    rows = []
    for r in runs:
        started, finished = _naive(r.started_at), _naive(r.finished_at)
        elapsed = ((finished or now) - started).total_seconds() if started else None
        progress = (r.steps_done / r.total_steps) if r.total_steps else 0.0
        eta = None
        if r.status == "running" and elapsed and r.steps_done and r.total_steps:
            eta = elapsed / r.steps_done * max(r.total_steps - r.steps_done, 0)
        err = latest_error(r.latest)
        # what a reader needs first comes first, so that it fits 1280 pixels without scrolling sideways
        rows.append(
            {
                "id": r.id,
                "label": r.label,
                "detail": f"./run?run={r.id}",
                "status": r.status
                + (" (cancel requested)" if r.cancel_requested and r.status == "running" else ""),
                "progress": min(max(progress, 0.0), 1.0),
                "test error": "" if err is None else f"{err:.4f}",  # blank, not "None", before a run has one
                "elapsed": fmt_seconds(elapsed),
                "ETA": fmt_seconds(eta),
                "reason": r.reason or (waiting_reason(r, connected_now) if r.status == "queued" else "") or "",
                "epoch": r.epochs_done,
                "seed": r.seed,
                "dataset": r.dataset,
                "worker": r.worker_host or "",
                "device": r.device or "",
                "exp": r.experiment_id,
            }
        )
    return pd.DataFrame(rows)


COLUMNS = {
    "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent",
                                                width="small"),  # fmt: skip
    "test error": st.column_config.TextColumn("test error", width="small"),
    "detail": st.column_config.LinkColumn("detail", display_text="open", width="small"),
    "id": st.column_config.NumberColumn("id", format="%d", width="small"),
    "exp": st.column_config.NumberColumn("exp", format="%d", width="small"),
    # pixels: at 1280 px (sidebar open) every column up to the epoch shows; seed, dataset, worker... scroll in
    "reason": st.column_config.TextColumn("reason", width=170),  # hover or widen it for a long one
    "status": st.column_config.TextColumn("status"),  # as wide as its longest value
    "epoch": st.column_config.NumberColumn("epoch", format="%d", width=56),
}


def page() -> None:
    st.title("Runs")
    exps = data.cached_experiments()
    by_id = {e.id: e for e in exps}
    exp_choice, family, status, tag = filters(exps, by_id)
    _sync_params(exp=exp_choice, family=family, status=status, tag=tag)

    if not exps:
        st.info("No experiments yet.")
        link("launch", "Launch one")
        return

    if exp_choice is not None:
        experiment_header(by_id[exp_choice])

    active = any(e.counts.get(s) for e in exps for s in ACTIVE)
    live_table(exp_choice, family, status, tag, run_every="2s" if active else None)
    if can_write():
        actions(exp_choice)
    else:
        write_denied_note()
    experiments_table(exps)


def filters(exps, by_id) -> tuple:
    """The four filters (experiment, family, status, tag), started from the query string; a value there
    that names nothing gets a warning and is ignored. Returns the chosen (exp id, family, status, tag)."""
    exp_id = int_param("exp", what="experiment id")
    qp_family, qp_status, qp_tag = str_param("family"), str_param("status"), str_param("tag")

    if exp_id is not None and exp_id not in by_id:
        st.warning(f"experiment {exp_id} does not exist (deleted?); showing all experiments")
        exp_id = None
    for name, value, valid in (("family", qp_family, list_models()), ("status", qp_status, RUN_STATUSES)):
        if value is not None and value not in valid:
            st.warning(f"?{name}={value!r} is not one of: {', '.join(valid)}; filter ignored")
    tags = sorted({t for e in exps for t in e.tags})

    c1, c2, c3, c4 = st.columns(4)
    exp_choice = c1.selectbox(
        "Experiment",
        [None, *by_id],
        index=([None, *by_id].index(exp_id) if exp_id in by_id else 0),
        format_func=lambda i: "all" if i is None else f"{i}: {by_id[i].title}",
        key="runs_exp",
    )
    families = [None, *list_models()]
    family = c2.selectbox(
        "Family",
        families,
        index=families.index(qp_family) if qp_family in families else 0,
        format_func=lambda f: f or "all",
        key="runs_family",
    )
    statuses = [None, *RUN_STATUSES]
    status = c3.selectbox(
        "Status",
        statuses,
        index=statuses.index(qp_status) if qp_status in statuses else 0,
        format_func=lambda s: s or "all",
        key="runs_status",
    )
    tag_opts = [None, *tags] if qp_tag in tags or qp_tag is None else [None, qp_tag, *tags]
    tag = c4.selectbox(
        "Tag",
        tag_opts,
        index=tag_opts.index(qp_tag) if qp_tag in tag_opts else 0,
        format_func=lambda t: t or "all",
        key="runs_tag",
    )
    return exp_choice, family, status, tag


def experiments_table(exps) -> None:
    """Every experiment with its run counts by status and links to compare it or list its runs."""
    st.subheader("Experiments")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "id": e.id,
                    "title": e.title,
                    "owner": e.owner or "",
                    "tags": ", ".join(e.tags),
                    "created": e.created_at.strftime("%Y-%m-%d %H:%M") if e.created_at else "",
                    **{s: e.counts.get(s, 0) for s in RUN_STATUSES},
                    "compare": f"./compare?exp={e.id}",
                    "runs": f"./runs?exp={e.id}",
                }
                for e in exps
            ]
        ),
        hide_index=True,
        column_config={
            "compare": st.column_config.LinkColumn("compare", display_text="compare"),
            "runs": st.column_config.LinkColumn("runs", display_text="runs"),
        },
    )


def _sync_params(**values) -> None:
    """Keep the query string equal to the filters, so the URL reproduces the view."""
    for key, value in values.items():
        if value is None:
            if key in st.query_params:
                del st.query_params[key]
        elif st.query_params.get(key) != str(value):
            st.query_params[key] = str(value)


def experiment_header(exp) -> None:
    st.subheader(f"Experiment {exp.id}")
    st.text(exp.title)  # user text: shown as text, never as markup
    if exp.description:
        st.text(exp.description)
    meta = [f"owner: {exp.owner}" if exp.owner else "", f"tags: {', '.join(exp.tags)}" if exp.tags else ""]
    if any(meta):
        st.caption(escape_md(" · ".join(m for m in meta if m)))
    c1, c2 = st.columns(2)
    with c1:
        link("compare", "Compare this experiment", exp=exp.id)
    with c2:
        link("present", "Present it", exp=exp.id)


PAGE_SIZE = 500  # runs per page of the table, newest first; counted and paged in SQL


def live_table(exp_id, family, status, tag, run_every) -> None:
    counts = data.run_counts(data.db_url(), exp_id, status, family, tag)
    total = sum(counts.values())
    pages = max(1, -(-total // PAGE_SIZE))
    page_no = 1
    if pages > 1:
        page_no = int(st.number_input(f"Page (of {pages}, {PAGE_SIZE} runs each, newest first)", 1, pages, 1,
                                      key="runs_page"))  # fmt: skip

    @st.fragment(run_every=run_every)
    def table() -> None:
        # the story links say how many runs finished: drawn here, so they refresh with the table below
        story_links([e for e in data.cached_experiments() if exp_id is None or e.id == exp_id])
        runs = data.cached_runs(experiment_id=exp_id, family=family, status=status, tag=tag, limit=PAGE_SIZE,
                                offset=(page_no - 1) * PAGE_SIZE)  # fmt: skip
        if not runs:
            st.info("No runs match these filters.")
            return
        now = data.run_counts(data.db_url(), exp_id, status, family, tag) if run_every else counts
        shown = (f"runs {(page_no - 1) * PAGE_SIZE + 1:,}–{(page_no - 1) * PAGE_SIZE + len(runs):,} of "
                 f"{sum(now.values()):,} · " if pages > 1 else "")  # fmt: skip
        st.caption(
            shown
            + " · ".join(f"{n:,} {s}" for s, n in sorted(now.items(), key=lambda kv: -kv[1]))
            + (" · refreshing every 2 s" if run_every else "")
        )
        st.dataframe(run_rows(runs, data.workers_now(data.db_url())), hide_index=True, column_config=COLUMNS)
        if (
            run_every
            and not any(r.status in ACTIVE for r in runs)
            and st.session_state.get("runs_was_active")
        ):
            st.session_state["runs_was_active"] = False
            st.rerun()  # everything finished: rerun the page once to stop the timer
        st.session_state["runs_was_active"] = any(r.status in ACTIVE for r in runs)

    table()


def actions(exp_id) -> None:
    from skipweb.services.runs import cancel, delete

    st.subheader("Actions")
    if done := st.session_state.pop(FLASH, None):  # the last action's result, on the page it reran into
        kind, message = done
        (st.success if kind == "success" else st.error)(message)
    c1, c2, c3 = st.columns([1, 2, 2])
    run_id = c1.number_input("Run id", min_value=1, step=1, value=None, key="runs_action_id")
    with c2:
        b1, b2 = st.columns(2)
        if b1.button("Cancel", disabled=run_id is None, key="runs_cancel"):
            _do(lambda: f"run {run_id}: {cancel(int(run_id), db=data.engine())}")
        if b2.button("Retry", disabled=run_id is None, key="runs_retry"):
            _do(lambda: _retry(int(run_id)))
        link("run", "Open run detail", run=run_id)
    with c3:
        confirm = st.checkbox("Yes, delete it with its metrics and checkpoints", key="runs_confirm_delete")
        d1, d2 = st.columns(2)
        if d1.button("Delete run", disabled=run_id is None or not confirm, key="runs_delete"):
            _do(lambda: delete(run_id=int(run_id), db=data.engine()))
        if d2.button("Delete experiment", disabled=exp_id is None or not confirm, key="runs_delete_exp"):
            _do(lambda: delete(experiment_id=int(exp_id), db=data.engine()), deleted_experiment=True)


def _retry(run_id: int) -> str:
    from skipweb.services.runs import retry

    new_id, warning = retry(run_id, db=data.engine(), celery=data.celery_app())
    return f"run {run_id} queued again as run {new_id}" + (f" ({warning})" if warning else "")


FLASH = "runs_flash"


def _do(action, deleted_experiment: bool = False) -> None:
    """Run an action, then rerun the page at once so it reflects it (rows, headers, the cleared
    confirmation); its one-line result is shown above the actions."""
    try:
        st.session_state[FLASH] = ("success", action())
    except (RunNotFound, RunStateError) as e:
        st.session_state[FLASH] = ("error", str(e).splitlines()[0])
    data.clear()
    st.session_state.pop("runs_confirm_delete", None)
    if deleted_experiment and "exp" in st.query_params:
        del st.query_params["exp"]
    st.rerun()
