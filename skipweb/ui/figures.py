"""Charts on a page: a Plotly figure shown with its download buttons, and which runs a page charts by
default."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

import plotly.graph_objects as go
import streamlit as st

HAS_KALEIDO = importlib.util.find_spec("kaleido") is not None


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


def first_of_each(names: Sequence[str], n: int = 4) -> list[str]:
    """Up to ``n`` display labels, one per configuration first ("plain-20 · seed 0", "resnet-20 · seed 0"
    before "plain-20 · seed 1"): a default selection that shows every kind of net, not four seeds of one."""
    firsts, seen = [], set()
    for name in names:
        config = name.split(" · seed ")[0]
        if config not in seen:
            seen.add(config)
            firsts.append(name)
    return (firsts + [m for m in names if m not in firsts])[:n]
