"""The dashboard's password file (``SKIPWEB_AUTH_FILE``): one ``user:bcrypt_hash`` per line, ``#`` comments.

The one module that reads or writes the format: ``skipweb passwd`` sets a user, the sign-in form checks one.
"""

from __future__ import annotations

import os
from pathlib import Path

import bcrypt


def hash_password(password: str) -> str:
    """A bcrypt hash for a password-file line ``user:<hash>``."""
    if not password:
        raise ValueError("empty password")
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


def read_password_file(path: Path) -> dict[str, str]:
    """user -> bcrypt hash, from lines ``user:hash`` (blank lines and ``#`` comments ignored)."""
    users: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        user, _, hashed = line.partition(":")
        users[user.strip()] = hashed.strip()
    return users


def check_password(path: Path, user: str, password: str) -> bool:
    hashed = read_password_file(path).get(user)
    if not hashed or not password:
        return False
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:  # a malformed hash in the file
        return False


def set_password(path: Path, user: str, password: str) -> None:
    """Add or replace ``user`` in the file (created, mode 0600). Raises ValueError for a name that the
    format cannot hold (empty, or containing ':') or an empty password."""
    if ":" in user or not user.strip():
        raise ValueError("user names cannot be empty or contain ':'")
    hashed = hash_password(password)
    path = Path(path)
    keep = [ln for ln in (path.read_text().splitlines() if path.exists() else []) if ln.partition(":")[0].strip() != user]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([*keep, f"{user}:{hashed}"]) + "\n")
    os.chmod(path, 0o600)


def loopback(host: str) -> bool:
    """True for an address only this machine can reach."""
    import ipaddress

    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: only localhost is known to be local
        return False


def oidc_in(secrets: Path | None) -> bool:
    """True when a Streamlit secrets file has an [auth] section (its built-in OIDC sign-in)."""
    import tomllib

    if secrets is None:
        return False
    try:
        return bool(tomllib.loads(Path(secrets).read_text()).get("auth"))
    except (OSError, ValueError):
        return False


def open_door(host: str, auth_file: Path | None, secrets: Path | None, allow_anonymous: bool) -> str | None:
    """Why serving the dashboard on ``host`` would open it to the network with no sign-in (one line), or
    None when it may serve: a loopback address, a password file that exists, OIDC (an [auth] section in
    the ``secrets`` file; None: not configured), or an explicit SKIPWEB_ALLOW_ANONYMOUS=1. Checked by
    ``skipweb up`` before it starts Streamlit, and by app.py itself on every page (skipweb.ui.auth)."""
    if loopback(host) or allow_anonymous or oidc_in(secrets):
        return None
    if auth_file is not None and Path(auth_file).is_file():
        return None
    missing = f" (SKIPWEB_AUTH_FILE={auth_file} does not exist)" if auth_file is not None else ""
    return (f"refusing to serve the dashboard on {host} with no sign-in{missing}: create users with "
            "`skipweb passwd USER` and set SKIPWEB_AUTH_FILE, or configure OIDC in .streamlit/secrets.toml, "
            "or set SKIPWEB_ALLOW_ANONYMOUS=1 to serve it open")  # fmt: skip
