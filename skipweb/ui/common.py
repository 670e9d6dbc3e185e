"""Shared helpers of the dashboard pages: links, escaping, showing a chart, query params and sign-in.
(Every database read is in skipweb.ui.data.)

Sign-in has three modes, picked from the configuration:

* embedded (default, nothing configured): everyone may launch, cancel and delete;
* Streamlit's built-in OIDC, when ``.streamlit/secrets.toml`` has an ``[auth]`` section (``st.login``);
* a password file (``SKIPWEB_AUTH_FILE``, lines ``user:bcrypt_hash``) with a sign-in form in the sidebar.

In the team modes, viewers read everything; launching, cancelling and deleting need a signed-in user.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from skipweb.facts import MAX_ID
from skipweb.passwords import check_password
from skipweb.settings import get_settings

USER_KEY = "skipweb_user"
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


def escape_md(text: str) -> str:
    """User text (titles, tags, owners, reasons) shown inside markdown: every Markdown, HTML and Streamlit
    directive character (``:blue[...]``, ``$...$``) backslash-escaped and newlines flattened, so it stays
    text. The one escaping helper of the dashboard."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in str(text).replace("\n", " "))


_MD_SPECIAL = frozenset("\\`*_{}[]()<>#+-.!|~:$&")


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


# ---- auth ------------------------------------------------------------------------------------------
def oidc_configured() -> bool:
    """True when secrets.toml has an [auth] section (Streamlit's built-in OIDC sign-in)."""
    try:
        return bool(st.secrets.get("auth"))
    except Exception:  # no secrets file at all
        return False


def auth_mode() -> str:
    """'oidc', 'password' or 'open' (embedded default: no sign-in configured)."""
    if oidc_configured():
        return "oidc"
    if get_settings().auth_file:
        return "password"
    return "open"


EVERY_INTERFACE = "every interface"  # Streamlit's server.address unset: it binds 0.0.0.0 and ::


def closed_door() -> str | None:
    """Why this server must not show the dashboard (one line), or None. ``skipweb up`` refuses an open door
    before it starts; this is the same rule for ``streamlit run app.py --server.address 0.0.0.0`` (or no
    address at all, which binds every interface): no loopback address and no sign-in configured."""
    from skipweb.passwords import open_door

    host = st.get_option("server.address") or EVERY_INTERFACE
    s = get_settings()
    why = None if oidc_configured() else open_door(host, s.auth_file, None, s.allow_anonymous)
    return None if why is None else f"{why}; or serve it on this machine only: --server.address 127.0.0.1"


def current_user() -> str | None:
    """The signed-in user's name, or None (always None in open mode)."""
    mode = auth_mode()
    if mode == "oidc":
        if not st.user.is_logged_in:
            return None
        return str(st.user.get("email") or st.user.get("name") or "user")
    if mode == "password":
        return st.session_state.get(USER_KEY)
    return None


def can_write() -> bool:
    """May this session launch, cancel or delete? Everyone in open mode; signed-in users otherwise."""
    return auth_mode() == "open" or current_user() is not None


def sidebar_auth() -> None:
    """The sign-in widget in the sidebar (nothing in open mode)."""
    mode = auth_mode()
    if mode == "open":
        return
    with st.sidebar:
        user = current_user()
        if user:
            st.caption("Signed in as")
            st.text(user)
            if st.button("Sign out", key="auth_sign_out"):
                if mode == "oidc":
                    st.logout()
                else:
                    st.session_state.pop(USER_KEY, None)
                    st.rerun()
            return
        if mode == "oidc":
            st.caption("Viewing only: sign in to launch, cancel or delete.")
            if st.button("Sign in", key="auth_sign_in"):
                st.login()
            return
        path = Path(get_settings().auth_file)
        with st.form("sign_in"):
            st.caption("Viewing only: sign in to launch, cancel or delete.")
            name = st.text_input("User", key="auth_user")
            password = st.text_input("Password", type="password", key="auth_password")
            if st.form_submit_button("Sign in"):
                if not path.is_file():
                    st.error(f"password file {path} does not exist")
                elif check_password(path, name.strip(), password):
                    st.session_state[USER_KEY] = name.strip()
                    st.rerun()
                else:
                    st.error("wrong user or password")


def write_denied_note() -> None:
    st.info("Sign in (sidebar) to launch, cancel or delete runs; viewers can read everything.")


# ---- formatting ------------------------------------------------------------------------------------
def fmt_count(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def fmt_seconds(s: float | None) -> str:
    if s is None or s != s or s < 0:
        return ""
    s = int(s)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


def _one_or_range(values) -> str:
    vals = sorted(set(values))
    if not vals:
        return "?"
    return f"{vals[0]:g}" if len(vals) == 1 else f"{vals[0]:g}–{vals[-1]:g}"


def run_context(runs, exp=None) -> str:
    """One line saying what the runs on screen are: experiment, dataset, recipe (epochs, batch, lr), seeds
    and date, read from the runs' own specs (so a story view reading a 1-epoch experiment says 1 epoch)."""
    specs = [r.spec for r in runs]
    parts = [f"Experiment #{exp.id} «{escape_md(exp.title)}»"] if exp is not None else []
    if specs:
        parts.append(", ".join(sorted({str(s.get("dataset")) for s in specs})))
        epochs = _one_or_range(s.get("epochs", 0) for s in specs)
        parts.append(f"{epochs} epoch{'' if epochs == '1' else 's'}, batch "
                     f"{_one_or_range(s.get('batch_size', 0) for s in specs)}, lr "
                     f"{_one_or_range(s.get('lr', 0) for s in specs)}")  # fmt: skip
        seeds = sorted({int(s.get("seed", 0)) for s in specs})
        parts.append(f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}")
    when = [r.created_at for r in runs if r.created_at] or ([exp.created_at] if exp is not None else [])
    if when:
        parts.append(min(when).strftime("%Y-%m-%d"))
    return " · ".join(parts)


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


# ---- charts on a page ------------------------------------------------------------------------------------
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


# ---- segmentation masks as pictures -------------------------------------------------------------------
PALETTE = [(0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180)]
IGNORE_COLOR = (128, 128, 128)


def colorize(mask):
    """(H, W) class ids -> (H, W, 3) uint8; ignored pixels (255) grey."""
    import numpy as np

    out = np.zeros((*mask.shape, 3), dtype=np.uint8)
    for c in np.unique(mask):
        out[mask == c] = IGNORE_COLOR if c == 255 else PALETTE[int(c) % len(PALETTE)]
    return out


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
