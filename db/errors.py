"""Errors the database layer raises on purpose; each message is one line a user can act on."""

from __future__ import annotations


class SchemaError(RuntimeError):
    """The database schema is missing or at a revision this skipweb does not run on."""


class RunNotFound(LookupError):
    """No run (or experiment) with that id: it never existed or was deleted."""


class RunStateError(ValueError):
    """The run is in a state that does not allow the operation (e.g. cancelling a finished run)."""
