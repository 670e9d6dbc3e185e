"""Errors every layer may raise for a person to read: one line, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A request that cannot be met as asked (bad input, a run that is not ready): ``str(err)`` is one line
    naming the problem and, where there are any, the valid choices. The CLI prints it and exits 2."""


class SpecError(ValueError):
    """A spec that cannot run. ``str(err)`` is one line that names the problem and the valid choices."""


class Unavailable(RuntimeError):
    """A store the work writes to (the database) stayed unreachable past its retry budget. The work is
    handed back to the queue, not failed: nothing about it was wrong."""


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as a reason a person reads: its type and first line, at most ``limit`` characters."""
    first = next((t.strip() for t in str(exc).splitlines() if t.strip()), "")
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ModelConfigError(ValueError):
    """A family, depth or option that the registry cannot build. The message is one line for users."""


class DatasetError(ValueError):
    """A dataset that cannot be loaded as asked. The message is one line naming the problem and the choices."""
