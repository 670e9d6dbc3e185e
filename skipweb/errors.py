"""Errors every layer may raise for a person to read: one line, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A request that cannot be met as asked (bad input, a run that is not ready): ``str(err)`` is one line
    naming the problem and, where there are any, the valid choices. The CLI prints it and exits 2."""


class SpecError(ValueError):
    """A spec that cannot run. ``str(err)`` is one line that names the problem and the valid choices."""
