"""Issue 11, fault 2 on PostgreSQL: a connection terminated in the middle of a metrics write (a failover,
an administrator, a proxy timing out) is retried; the run is not failed and the batch is stored once.

Deterministic: another session holds the run's row lock, so the worker's write (DbSink.on_flush, fenced by
FOR SHARE on that row) is blocked inside its statement; its backend is then terminated with
``pg_terminate_backend`` and the lock released. (test_outage_matrix.py terminates a worker's
connections from outside, where the pool's pre-ping may replace them between statements.)"""

from __future__ import annotations

import threading
import time

import pytest

pytestmark = pytest.mark.services


def test_a_connection_terminated_mid_write_is_retried(pg_module_url: str, caplog: pytest.LogCaptureFixture) -> None:
    from sqlalchemy import create_engine, text

    from db import experiments, metrics, runs
    from db.session import get_engine
    from skipweb.grid import row
    from skipweb.services.sink import DbSink
    from skipweb.spec import RunSpec
    from skipweb.training.sinks import MetricPoint

    url = pg_module_url
    exp = experiments.create_experiment(url, "terminated mid-write")
    [rid] = runs.add_runs(url, exp, [row(RunSpec(family="mlp", depth=4, dataset="digits", device="cpu"))])
    assert runs.claim(url, rid, "w1")
    sink = DbSink(rid, url, owner="w1", retry_s=60)
    points = [MetricPoint("train/loss", s, s / 10, 1.0 / s, 0.1 * s) for s in range(1, 11)]

    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    locker = get_engine(url).connect()
    tx = locker.begin()
    locker.execute(text("SELECT id FROM runs WHERE id = :i FOR UPDATE"), {"i": rid})
    errors: list[BaseException] = []

    def write() -> None:
        try:
            sink.on_flush(points, [])
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    writer = threading.Thread(target=write)
    with caplog.at_level("WARNING"):
        writer.start()
        blocked = """SELECT pid FROM pg_stat_activity WHERE datname = current_database()
                     AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"""
        pid, deadline = None, time.monotonic() + 60
        with admin.connect() as conn:
            while pid is None and time.monotonic() < deadline:  # an event: the write is waiting on the lock
                pid = conn.execute(text(blocked)).scalar()
                time.sleep(0.05)
            assert pid, "the write never blocked on the row lock"
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        tx.rollback()
        locker.close()
        writer.join(60)
    admin.dispose()
    assert not writer.is_alive() and not errors, errors
    assert not sink.should_stop(), "the sink lost its lease or stopped the run"
    df = metrics.read_metrics(url, [rid], keys=["train/loss"])
    assert sorted(df["step"]) == list(range(1, 11)), "the batch was lost or stored twice"
    retried = [r.getMessage() for r in caplog.records if "database unavailable" in r.getMessage()]
    assert retried and "terminat" in retried[0].lower(), retried  # one line naming the cause, then a retry
    assert runs.get_run(url, rid).status == "running"
