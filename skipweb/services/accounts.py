"""Sign-in changes: who may sign in to the dashboard (the password file, skipweb.passwords)."""

from __future__ import annotations

from pathlib import Path


def set_password(path: Path, user: str, password: str) -> None:
    """Add or replace ``user`` in the password file (bcrypt-hashed). ValueError: a user name the file cannot
    hold (empty, or with ':'), or an empty password; OSError: the file cannot be written."""
    from skipweb.passwords import set_password as write

    if ":" in user or not user.strip():
        raise ValueError("user names cannot be empty or contain ':'")
    write(path, user, password)
