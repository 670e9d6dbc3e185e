"""Issue 22, item 8: a broker outage in a worker's log is one line per event, never a traceback."""

from __future__ import annotations

import logging

from skipweb.services.worker_log import OneLine


def _record(name: str, level: int, msg: str, *args, exc: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord(name, level, __file__, 1, msg, args, info)


def _format(record: logging.LogRecord) -> str | None:
    if not OneLine().filter(record):
        return None
    return logging.Formatter("%(levelname)s %(message)s").format(record)


def _refused() -> BaseException:
    class ConnectionError(Exception):  # redis.exceptions.ConnectionError is no OSError
        pass

    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as e:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.") from e
    except ConnectionError as e:
        return e


def test_couldnt_ack_is_one_line_with_its_cause() -> None:
    text = _format(_record("kombu.message", logging.CRITICAL, "Couldn't ack %r, reason:%r", "tag", "x",
                           exc=_refused()))  # fmt: skip
    assert text == ("CRITICAL Couldn't ack 'tag', reason:'x' (ConnectionError: Error 111 connecting to "
                    "127.0.0.1:6379. Connection refused.)")  # fmt: skip


def test_a_retry_message_is_one_line_and_celerys_cancel_warning_is_dropped() -> None:
    text = _format(_record("celery.worker.consumer.consumer", logging.ERROR,
                           "consumer: Cannot connect to %s: %s.\nTrying again in 2.00 seconds... (1/100)\n",
                           "redis://x", "refused"))  # fmt: skip
    assert text == "ERROR consumer: Cannot connect to redis://x: refused. Trying again in 2.00 seconds... (1/100)"
    assert _format(_record("py.warnings", logging.WARNING, "x.py:1: CPendingDeprecationWarning: \nIn Celery 5.1 "
                           "we introduced an optional breaking change which\n...")) is None  # fmt: skip


def test_a_bug_keeps_its_traceback_and_other_loggers_are_untouched() -> None:
    try:
        raise KeyError("bug")
    except KeyError as e:
        bug = e
    assert "Traceback" in _format(_record("celery.worker", logging.ERROR, "Task failed", exc=bug))
    assert _format(_record("skipweb.x", logging.WARNING, "two\nlines")) == "WARNING two\nlines"
