"""A worker's log during a broker outage: one line per retry and one when it is back, never a traceback.

Celery logs a lost broker connection at length: kombu's "Couldn't ack" is CRITICAL with the whole chain of
tracebacks (~20 lines per message a task finished while Redis was down), and the consumer's "Cannot connect
... Trying again in 2.00 seconds... (1/100)" spans three lines. The outage is not a bug in the worker, and
it recovers by itself ("Connected to redis://..."): :class:`OneLine` turns each such record into one line
with its cause. Installed on the worker's log handlers once Celery has set them up (:func:`install`).
"""

from __future__ import annotations

import logging

from skipweb.errors import one_line

_SOURCES = ("celery", "kombu", "amqp", "redis")


def _socket_error(exc: BaseException | None) -> bool:
    """True when ``exc`` or what it came from is a socket error: the broker is away, not a bug."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) or "ConnectionError" in type(exc).__name__:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


# Celery 5 warns in 7 lines on every lost connection that Celery 6 will cancel late-ack tasks then; this
# worker relies on the current behaviour (a run trains on; its message is acked, or redelivered and found
# claimed, afterwards), so the warning says nothing to act on. (A warnings filter would not hold: Celery's
# log set-up puts its own 'always' filter first.)
_CANCEL_WARNING = "In Celery 5.1 we introduced an optional breaking change"


class OneLine(logging.Filter):
    """Broker connection trouble from Celery and kombu as one line: the message with its cause, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "py.warnings":
            return _CANCEL_WARNING not in str(record.msg)
        if not record.name.startswith(_SOURCES) or record.levelno < logging.WARNING:
            return True
        msg = record.getMessage()
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and _socket_error(exc):
            msg = f"{msg} ({one_line(exc)})"
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        if exc is None or record.exc_info is None:
            record.msg, record.args = " ".join(msg.split()), ()
        return True


def install() -> None:
    """Add :class:`OneLine` to the handlers Celery sets up in a worker (its signals fire in worker_main)."""
    from celery.signals import after_setup_logger, after_setup_task_logger

    def add(logger: logging.Logger | None = None, **_) -> None:
        for handler in (logger or logging.getLogger()).handlers:
            if not any(isinstance(f, OneLine) for f in handler.filters):
                handler.addFilter(OneLine())

    after_setup_logger.connect(add, weak=False)
    after_setup_task_logger.connect(add, weak=False)
