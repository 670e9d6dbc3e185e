"""Links between the dashboard's pages and the query params they carry (``?run=12``, ``?story=unet``)."""

from __future__ import annotations

import streamlit as st

from skipweb.facts import MAX_ID
from skipweb.ui.formatting import escape_md

PAGES: dict = {}  # url name -> st.Page, filled by the router (ui/app.py), for st.page_link between callable pages
# The dashboard's pages, in menu order, written once: url path -> (module in skipweb.ui, title). The router
# (skipweb/ui/app.py) routes them; the server (skipweb/ui/server.py) imports them before its first viewer.
PAGE_MODULES = {"launch": ("launch", "Launch"), "runs": ("runs", "Runs"), "compare": ("compare", "Compare"),
                "run": ("run_detail", "Run detail"), "present": ("present", "Present")}


def link(page: str, label: str, **params) -> None:
    """A link to another page (``page``: launch, runs, compare, run, present) with query params."""
    qp = {k: str(v) for k, v in params.items() if v is not None}
    target = PAGES.get(page)
    if target is not None:
        try:
            st.page_link(target, label=label, query_params=qp or None)
            return
        except Exception:  # not routed (a page function called outside app.py, e.g. in a test)
            pass
    query = "&".join(f"{k}={v}" for k, v in qp.items())
    st.markdown(f"[{escape_md(label)}](./{page}{'?' + query if query else ''})")


def story_links(exps) -> None:
    """For the newest experiment of each reproduction story (tagged ``story:KEY``): a link straight to its
    story view, pinned to that experiment (a later launch does not change what it opens), saying how many of
    its runs have finished."""
    from db.records import FINAL_STATUSES
    from skipweb.stories import STORIES, TAG_PREFIX

    seen: set[str] = set()
    for e in exps:  # newest first
        for tag in e.tags:
            key = tag.removeprefix(TAG_PREFIX)
            if not tag.startswith(TAG_PREFIX) or key not in STORIES or key in seen:
                continue
            seen.add(key)
            done, total = sum(e.counts.get(s, 0) for s in FINAL_STATUSES), sum(e.counts.values())
            state = "finished: see what it found" if done == total else f"{done} of {total} runs finished so far"
            link("present", f"Story «{STORIES[key].title}» (experiment {e.id}), {state} →", story=key, exp=e.id)


# ---- query params ----------------------------------------------------------------------------------
def int_param(name: str, *, what: str = "id") -> int | None:
    """``?name=`` as an int; None when absent. A malformed value shows a clear error and returns None."""
    raw = st.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        st.error(f"?{name}={raw!r} is not a valid {what}: it must be a whole number, e.g. ?{name}=12")
        return None
    if not 1 <= value <= MAX_ID:  # a larger id cannot exist, and would overflow the database's integer
        st.error(f"?{name}={value} is not a valid {what}: ids run from 1 to {MAX_ID}")
        return None
    return value


def str_param(name: str) -> str | None:
    raw = st.query_params.get(name)
    return raw or None
