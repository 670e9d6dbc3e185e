"""The embedded broker keeps submission order (issue 12 item 10), through the real kombu channel."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest


def test_the_embedded_broker_is_first_in_first_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kombu's filesystem transport names messages by unpadded milliseconds of the monotonic clock and
    takes them in string order: on a machine up 2.8 hours (10^7 ms) the next message sorts first. The
    clock is set to cross that point half-way through the submissions; runs must still come out in order."""
    from kombu.transport import filesystem

    from skipweb.services.broker import enqueue, make_app
    from skipweb.settings import Settings

    ticks = itertools.count(9_999.995, 0.001)  # seconds: 9,999,995 ms, then past 10,000,000 ms
    monkeypatch.setattr(filesystem, "monotonic", lambda: next(ticks))
    app = make_app(Settings(data_dir=tmp_path))
    for run_id in range(1, 11):
        enqueue([run_id], celery=app)
    taken = []
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        while (message := channel.basic_get("any", no_ack=True)) is not None:
            args, _kwargs, _embed = message.decode()
            taken.append(args[0])
    assert taken == list(range(1, 11))
    assert not list((tmp_path / "broker" / "queue").iterdir())  # nothing half-written left behind
