"""Run detail page (``?run=ID``): spec, environment, failure reason, every metric, the probe layers, a
diagram of the network with its skip connections and its loss landscape (skipweb.ui.landscape_view)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

from skipweb.charts.network import network_map
from skipweb.facts import CHECKPOINT_NAME, metric_name
from skipweb.ui import blocks_view, data, landscape_view
from skipweb.ui.formatting import escape_md, fmt_count, fmt_seconds
from skipweb.ui.links import int_param, link
from skipweb.ui.masks import colorize

FAILED = ("failed", "diverged")


def page() -> None:
    st.title("Run detail")
    run_id = int_param("run", what="run id")
    if run_id is None:
        if "run" not in st.query_params:
            st.info("Open a run from the Runs page, or add ?run=ID to the address.")
        link("runs", "Back to Runs")
        return
    found = data.cached_runs(run_ids=[run_id], limit=1)
    if not found:
        st.error(f"run {run_id} does not exist (it may have been deleted)")
        link("runs", "Back to Runs")
        return
    run = found[0]
    url = data.db_url()
    header(run)
    spec_section(run)
    metrics_section(url, run)
    layers = data.probe_layers(url, (run.id,)).get(run.id, [])
    layers_section(run, layers)
    blocks_view.run_section(url, run)
    if run.family == "unet":
        gallery_section(run)
    landscape_view.run_section(run)


def header(run) -> None:
    """Status, progress and size; the failure or cancellation reason; links to the experiment and the retry."""
    st.subheader(f"Run {run.id}: {escape_md(run.label)}")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("status", run.status)
    c2.metric("epochs done", run.epochs_done)
    c3.metric("steps", f"{run.steps_done}/{run.total_steps or '?'}")
    c4.metric("parameters", f"{run.params:,}" if run.params else "?")
    if run.status in FAILED:
        st.error(f"{run.status}: {escape_md(run.reason or 'no reason recorded')}")
    elif run.status == "cancelled":
        st.warning(escape_md(run.reason or "cancelled"))
    elif run.cancel_requested:
        st.warning("cancel requested: the worker stops at its next flush")
    nav = st.columns(3)
    with nav[0]:
        link("runs", "All runs of this experiment", exp=run.experiment_id)
    with nav[1]:
        link("compare", "Compare this experiment", exp=run.experiment_id)
    if run.retry_of:
        with nav[2]:
            link("run", f"Retry of run {run.retry_of}", run=run.retry_of)


def spec_section(run) -> None:
    """The stored spec beside the environment the run ran in."""
    left, right = st.columns(2)
    with left:
        st.markdown("**Spec**")
        try:
            st.json(json.loads(run.spec_json), expanded=2)
        except ValueError:
            st.code(run.spec_json)
    with right:
        st.markdown("**Environment**")
        env = {
            "torch": run.torch_version,
            "device": run.device,
            "worker": run.worker_host,
            "attempts": run.attempts,
            "FLOPs/sample": fmt_count(run.flops) if run.flops else None,
            "created": _when(run.created_at),
            "started": _when(run.started_at),
            "finished": _when(run.finished_at),
            "time": fmt_seconds((run.finished_at - run.started_at).total_seconds())
            if run.started_at and run.finished_at else None,
            "checkpoint": run.checkpoint_path,
            "config hash": run.config_hash,
        }
        st.dataframe(
            pd.DataFrame({"": list(env), "value": ["" if v is None else str(v) for v in env.values()]}),
            hide_index=True,
        )


def _when(t) -> str | None:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else None


def metrics_section(url: str, run) -> None:
    st.subheader("Metrics")
    df = data.metric_frame(url, (run.id,))
    if df.empty:
        st.info("No metrics yet" + (": the run has not started." if run.status == "queued" else "."))
        return
    last = df.sort_values("step").groupby("key").tail(1)
    st.dataframe(last.assign(metric=last["key"].map(metric_name))[["metric", "key", "step", "epoch", "value"]],
                 hide_index=True)  # fmt: skip
    keys = sorted(df["key"].unique())
    preferred = [k for k in keys if "error" in k or "loss" in k] or keys
    chosen = st.multiselect("Charts", keys, default=preferred[:6], key="detail_keys", format_func=metric_name)
    cols = st.columns(2)
    for i, key in enumerate(chosen):
        part = df[df["key"] == key]
        fig = px.line(part, x="step", y="value", title=metric_name(key), markers=len(part) < 30,
                      labels={"value": metric_name(key)})  # fmt: skip
        fig.update_layout(height=280, margin=dict(l=10, r=10, t=40, b=10))
        cols[i % 2].plotly_chart(fig, key=f"detail_chart_{key}")


def layers_section(run, layers) -> None:
    st.subheader("Network")
    if not layers:
        st.info("No probe layers recorded yet: the worker records them when it builds the model.")
        return
    options = run.spec.get("options", {})
    shortcut = "A" if run.family == "highway" else str(options.get("shortcut", "A"))
    st.plotly_chart(network_map(layers, run.family, shortcut), key="network-map",
                    config={"displayModeBar": False})  # fmt: skip
    st.caption(
        "Every probe layer in depth order, top to bottom, one column per stage (a long stage continues in the "
        "next column); an arc spans the layers each skip connection bridges, a ▼ marks a shortcut where the "
        "resolution halves. Hover a layer for its full name and parameters."
    )
    st.dataframe(
        pd.DataFrame([{"idx": p.idx, "name": p.name, "skip": p.skip, "params": p.params} for p in layers]),
        hide_index=True,
    )


def gallery_section(run) -> None:
    st.subheader("Predictions")
    ckpt = Path(run.checkpoint_path) / CHECKPOINT_NAME if run.checkpoint_path else None
    if ckpt is None or not ckpt.is_file():
        st.info(
            "The prediction gallery (image | truth | prediction) needs the run's checkpoint, which is written "
            "after each epoch; there is none on this machine yet."
        )
        return
    try:
        images, truths, preds, epoch = data.predictions(run.spec_json, run.checkpoint_path, ckpt.stat().st_mtime,
                                                        run=(run.id, run.status, run.steps_done))  # fmt: skip
    except Exception as e:  # a checkpoint from another version, data not on this machine...
        st.warning(
            f"could not draw predictions: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        )
        return
    st.caption(
        f"First {len(images)} test images; checkpoint after epoch {epoch}. Columns: image | truth | prediction."
    )
    for i, (img, truth, pred) in enumerate(zip(images, truths, preds, strict=True)):
        cols = st.columns(3)
        cols[0].image(img, caption=f"test image {i}", width="stretch", clamp=True)
        cols[1].image(colorize(truth), caption="truth", width="stretch")
        cols[2].image(colorize(pred), caption="prediction", width="stretch")
