"""Run detail page (``?run=ID``): spec, environment, failure reason, every metric, the probe layers, a
diagram of the network with its skip connections and its loss landscape (skipweb.ui.landscape_view)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

from skipweb.facts import CHECKPOINT_NAME
from skipweb.ui import blocks_view, data, landscape_view
from skipweb.ui.common import colorize, escape_md, int_param, link

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
            "FLOPs/sample": run.flops,
            "created": str(run.created_at),
            "started": str(run.started_at) if run.started_at else None,
            "finished": str(run.finished_at) if run.finished_at else None,
            "checkpoint": run.checkpoint_path,
            "config hash": run.config_hash,
        }
        st.dataframe(
            pd.DataFrame({"": list(env), "value": ["" if v is None else str(v) for v in env.values()]}),
            hide_index=True,
        )

    metrics_section(url, run)
    layers = data.probe_layers(url, (run.id,)).get(run.id, [])
    layers_section(run, layers)
    blocks_view.run_section(url, run)
    if run.family == "unet":
        gallery_section(run)
    landscape_view.run_section(run)


def metrics_section(url: str, run) -> None:
    st.subheader("Metrics")
    df = data.metric_frame(url, (run.id,))
    if df.empty:
        st.info("No metrics yet" + (": the run has not started." if run.status == "queued" else "."))
        return
    last = df.sort_values("step").groupby("key").tail(1)
    st.dataframe(last[["key", "step", "epoch", "value"]], hide_index=True)
    keys = sorted(df["key"].unique())
    preferred = [k for k in keys if "error" in k or "loss" in k] or keys
    chosen = st.multiselect("Charts", keys, default=preferred[:6], key="detail_keys")
    cols = st.columns(2)
    for i, key in enumerate(chosen):
        part = df[df["key"] == key]
        fig = px.line(part, x="step", y="value", title=key, markers=len(part) < 30)
        fig.update_layout(height=280, margin=dict(l=10, r=10, t=40, b=10))
        cols[i % 2].plotly_chart(fig, key=f"detail_chart_{key}")


def layers_section(run, layers) -> None:
    st.subheader("Network")
    if not layers:
        st.info("No probe layers recorded yet: the worker records them when it builds the model.")
        return
    st.graphviz_chart(network_dot(layers))
    st.caption(
        "One node per probe layer in depth order; curved edges jump over the layers a skip connection "
        "bridges (derived from each layer's skip flag and its block name)."
    )
    st.dataframe(
        pd.DataFrame([{"idx": p.idx, "name": p.name, "skip": p.skip, "params": p.params} for p in layers]),
        hide_index=True,
    )


def _block_of(name: str) -> str:
    """The block a layer belongs to: its dotted name without the last one or two parts
    (``layer1.0.conv1`` -> ``layer1.0``)."""
    parts = name.split(".")
    if len(parts) >= 3 and parts[-1] in ("weight", "bias"):
        parts = parts[:-1]
    return ".".join(parts[:-1]) if len(parts) > 1 else name


def skip_spans(layers) -> list[tuple[int, int]]:
    """(first, last) positions of each run of consecutive skip-bridged layers in the same block."""
    spans: list[tuple[int, int]] = []
    start = None
    for i, p in enumerate(layers):
        same_block = start is not None and _block_of(layers[start].name) == _block_of(p.name)
        if p.skip and start is not None and same_block:
            continue
        if start is not None:
            spans.append((start, i - 1))
            start = None
        if p.skip:
            start = i
    if start is not None:
        spans.append((start, len(layers) - 1))
    return spans


def skip_edges(layers) -> list[tuple[int, int]]:
    """Skip edges as (from, to) positions in the chain input, layer 0, ..., output.

    U-Nets (layers named ``inc``/``downs.i``/``ups.j``): a long skip from the end of each encoder level to
    the decoder stage that joins it (``ups.j`` joins level ``depth-1-j``). Others: an edge around each
    span of consecutive skip-bridged layers of one block (a residual/highway/dense block)."""
    names = [p.name for p in layers]
    if any(n.startswith("ups.") for n in names) and any(n.startswith("downs.") for n in names):
        if not any(p.skip for p in layers):  # skip=none
            return []
        levels = ["inc"] + sorted({".".join(n.split(".")[:2]) for n in names if n.startswith("downs.")})
        ups = sorted({".".join(n.split(".")[:2]) for n in names if n.startswith("ups.")})
        depth = len(levels) - 1
        edges = []
        for j, up in enumerate(ups):
            level = depth - 1 - j
            if not 0 <= level < len(levels):
                continue
            enc = [i for i, n in enumerate(names) if n == levels[level] or n.startswith(levels[level] + ".")]
            dec = [i for i, n in enumerate(names) if n.startswith(up + ".") and not n.endswith(".up")]
            if enc and dec:
                edges.append((enc[-1] + 1, dec[0] + 1))  # +1: the chain starts with the input node
        return edges
    return [(a, b + 2) for a, b in skip_spans(layers)]  # from the node before to the node after the span


def network_dot(layers) -> str:
    """Graphviz DOT: input -> layers (depth order) -> output, with a skip edge around each bridged span."""

    def q(text: str) -> str:
        return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph net {", "rankdir=LR;", "node [shape=box, fontsize=10, style=rounded];"]
    lines.append('in [label="input", shape=ellipse]; out [label="output", shape=ellipse];')
    for i, p in enumerate(layers):
        color = ', color="#1f77b4"' if p.skip else ""
        lines.append(f"n{i} [label={q(f'{p.name} ({p.params:,})')}{color}];")
    chain = ["in", *(f"n{i}" for i in range(len(layers))), "out"]
    lines += [f"{a} -> {b};" for a, b in zip(chain, chain[1:], strict=False)]
    for src, dst in skip_edges(layers):  # positions in ``chain``
        lines.append(
            f'{chain[src]} -> {chain[dst]} [color="#d62728", style=dashed, constraint=false, label="skip"];'
        )
    lines.append("}")
    return "\n".join(lines)


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
        images, truths, preds, epoch = data.predictions(run.spec_json, run.checkpoint_path, ckpt.stat().st_mtime)
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
