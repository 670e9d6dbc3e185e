"""Transient database errors, retried with bounded backoff.

A disconnect (PostgreSQL restarted, a connection terminated), a lock wait that ran out (SQLite's
``database is locked``) or a serialization failure is not a reason to fail a run: the writer waits and
tries again, logging one line per retry with the cause and one when the database answers again. Past the
budget the caller decides (a worker hands its run back). Anything else (a constraint, a bad query) raises
at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

T = TypeVar("T")
log = logging.getLogger(__name__)


def transient(exc: BaseException) -> bool:
    """True for errors that another attempt may not hit: lost connections, lock timeouts, serialization."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError)


def cause(exc: BaseException) -> str:
    """The driver's first line, without SQLAlchemy's SQL and parameters (which go to the debug log)."""
    orig = getattr(exc, "orig", None) or exc
    first = next((t.strip() for t in str(orig).splitlines() if t.strip()), type(orig).__name__)
    return f"{type(orig).__name__}: {first}"[:200]


def retry(fn: Callable[[], T], *, what: str, budget_s: float, first_delay: float = 0.25,
          max_delay: float = 8.0, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> T:  # fmt: skip
    """``fn()``, retried on transient errors for up to ``budget_s`` seconds (exponential backoff); the last
    transient error is raised once the budget is spent."""
    deadline = clock() + budget_s
    delay, failures = first_delay, 0
    while True:
        try:
            result = fn()
        except Exception as exc:
            if not transient(exc) or clock() + delay > deadline:
                if failures:
                    log.warning("%s: giving up after %d retries: %s", what, failures, cause(exc))
                raise
            failures += 1
            log.warning("%s: database unavailable (%s); retry %d in %.1f s", what, cause(exc), failures, delay)
            log.debug("%s: full error", what, exc_info=True)
            sleep(delay)
            delay = min(delay * 2, max_delay)
            continue
        if failures:
            log.warning("%s: database answered again after %d retries", what, failures)
        return result
