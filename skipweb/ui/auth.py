"""Sign-in on the dashboard: who is signed in, and whether this session may launch, cancel or delete.

Sign-in has three modes, picked from the configuration:

* embedded (default, nothing configured): everyone may launch, cancel and delete;
* Streamlit's built-in OIDC, when ``.streamlit/secrets.toml`` has an ``[auth]`` section (``st.login``);
* a password file (``SKIPWEB_AUTH_FILE``, lines ``user:bcrypt_hash``) with a sign-in form in the sidebar.

In the team modes, viewers read everything; launching, cancelling and deleting need a signed-in user.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from skipweb.passwords import check_password
from skipweb.settings import get_settings

USER_KEY = "skipweb_user"


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
