"""Issue 11, fault 2: a database blip does not fail a run. A worker retries transient errors (a locked
SQLite file, a dropped PostgreSQL connection) with bounded backoff; an outage longer than its budget hands
the run back to the queue without counting the attempt; reasons stay one short sentence.

In-process (services.training.execute_run, the worker's own code path) against a real SQLite file whose
write lock another connection holds, with SQLite's busy timeout shortened so a lock outlasts it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from db import session as db_session

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _queue(db_url: str, tmp_path: Path) -> int:
    from db import experiments, runs
    from skipweb.grid import row
    from skipweb.spec import RunSpec

    spec = RunSpec(family="mlp", depth=4, dataset="digits", epochs=2, subset=512, device="cpu")
    exp = experiments.create_experiment(db_url, "outage")
    return runs.add_runs(db_url, exp, [row(spec)], checkpoint_dir=tmp_path / "ckpt")[0]


class LockAtFirstFlush:
    """A sink that, at the run's first flush, has another connection take SQLite's write lock (what a long
    writer, or a backup, does to a busy database) and hold it until the worker logs ``until``: events, not
    a clock, so a slow machine cannot let the run slip past the outage."""

    def __init__(self, path: str, until: str):
        from skipweb.training.sinks import Sink

        outer = self
        self.path, self.until = path, until
        self.started, self.taken, self.release = threading.Event(), threading.Event(), threading.Event()

        class _Sink(Sink):
            def on_flush(self, metrics, probes) -> None:
                if not outer.started.is_set():
                    outer.started.set()
                    threading.Thread(target=outer._lock, daemon=True).start()
                    assert outer.taken.wait(60), "the lock was not taken"  # before the worker's next write

        class _Watch(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if outer.until in record.getMessage():
                    outer.release.set()

        self.sink, self.watch = _Sink(), _Watch()

    def __enter__(self) -> LockAtFirstFlush:
        logging.getLogger().addHandler(self.watch)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger().removeHandler(self.watch)
        self.release.set()

    def _lock(self) -> None:
        con = sqlite3.connect(self.path, isolation_level=None)
        con.execute("BEGIN IMMEDIATE")
        self.taken.set()
        self.release.wait(120)  # a bound, so a broken worker fails the test instead of hanging it
        con.execute("ROLLBACK")
        con.close()


def _settings(tmp_path: Path, db_url: str, **kw):
    from skipweb.settings import Settings

    return Settings(data_dir=tmp_path, database_url=db_url, heartbeat_seconds=1, **kw)


@pytest.fixture
def short_busy_timeout(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(db_session, "SQLITE_BUSY_TIMEOUT_S", 0.5)
    db_session.dispose_engine(db_url)  # the next engine connects with the short timeout
    yield db_url
    db_session.dispose_engine(db_url)


@pytest.mark.slow
def test_a_locked_database_is_waited_out_not_a_failed_run(short_busy_timeout: str, tmp_path: Path) -> None:
    from db import runs
    from skipweb.services.training import execute_run

    db_url = short_busy_timeout
    run_id = _queue(db_url, tmp_path)
    # held until the worker has met it and waits to retry: then it is released and the run goes on
    with LockAtFirstFlush(db_url.removeprefix("sqlite:///"), until="retry 1 in") as lock:
        outcome = execute_run(run_id, _settings(tmp_path, db_url, db_retry_seconds=60), extra_sinks=[lock.sink],
                              owner="w1")  # fmt: skip
    assert lock.started.is_set() and lock.release.is_set()
    rec = runs.get_run(db_url, run_id)
    assert (outcome.status, rec.status, rec.attempts) == ("succeeded", "succeeded", 1), rec.reason


def test_a_long_outage_hands_the_run_back_uncounted(short_busy_timeout: str, tmp_path: Path, caplog) -> None:
    from db import runs
    from skipweb.services.training import execute_run

    db_url = short_busy_timeout
    run_id = _queue(db_url, tmp_path)
    settings = _settings(tmp_path, db_url, db_retry_seconds=1, lease_seconds=60)
    # held until the worker has spent its 1 s budget and hands the run back
    lock = LockAtFirstFlush(db_url.removeprefix("sqlite:///"), until="handing it back")
    with caplog.at_level("WARNING"), lock:
        outcome = execute_run(run_id, settings, extra_sinks=[lock.sink], owner="w1")
    rec = runs.get_run(db_url, run_id)
    assert outcome.status == "handed back" and outcome.recorded, str(outcome)
    assert rec.status == "queued" and rec.attempts == 0 and rec.lease_owner is None
    assert rec.reason.startswith("handed back: database unreachable") and len(rec.reason) <= 300, rec.reason
    assert "INSERT" not in rec.reason and "Traceback" not in caplog.text  # one line per retry, no SQL, no trace
    assert any("retry 1 in" in r.getMessage() for r in caplog.records)
    # the database is back: the next claim resumes the run and it ends normally, on attempt 1
    again = execute_run(run_id, settings, owner="w2")
    rec = runs.get_run(db_url, run_id)
    assert (again.status, rec.status, rec.attempts) == ("succeeded", "succeeded", 1), rec.reason


def test_a_run_that_fails_keeps_a_one_line_reason(db_url: str, tmp_path: Path) -> None:
    """Whatever the trainer raises, the stored reason is one short line (details go to the worker log)."""
    from skipweb.errors import one_line

    err = RuntimeError("boom\n" + "SELECT * FROM t WHERE x = 1\n" * 50)
    assert one_line(err) == "RuntimeError: boom"
    assert len(one_line(RuntimeError("x" * 5000))) == 200


# ---- issue 22, item 4: readers never wait on a writer; a write that cannot get the lock says so in one line ----
def test_readers_never_wait_on_a_writer(db_url: str, tmp_path: Path) -> None:
    """Another process holds SQLite's write lock (BEGIN IMMEDIATE, as a writer mid-transaction does): the
    schema check every process runs first, and the reads of `status` and the dashboard, answer at once."""
    import time

    from db import migrate, runs
    from db.metrics import read_metrics

    run_id = _queue(db_url, tmp_path)
    db_session.dispose_engine(db_url)  # fresh connections, opened while the lock is held
    con = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    try:
        t = time.monotonic()
        migrate.check(db_url)
        assert runs.get_run(db_url, run_id).status == "queued"
        assert len(runs.list_runs(db_url)) == 1
        read_metrics(db_url, [run_id])
        took = time.monotonic() - t
    finally:
        con.execute("ROLLBACK")
        con.close()
    assert took < 1.0, f"reads took {took:.1f} s behind a writer's lock"


def test_a_write_that_cannot_get_the_lock_says_so_in_one_line(short_busy_timeout: str, tmp_path: Path, capsys,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from skipweb.cli import main
    from skipweb.settings import get_settings

    monkeypatch.setenv("SKIPWEB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SKIPWEB_DATABASE_URL", short_busy_timeout)
    get_settings.cache_clear()
    con = sqlite3.connect(short_busy_timeout.removeprefix("sqlite:///"), isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(SystemExit) as ended:
            main(["submit", "mlp", "--depth", "2", "--dataset", "digits", "--epochs", "1"])
    finally:
        con.execute("ROLLBACK")
        con.close()
        get_settings.cache_clear()
    err = capsys.readouterr().err.strip()
    assert ended.value.code == 1 and "\n" not in err, err
    assert err.startswith("error: the database at sqlite:") and "locked by another writer; try again" in err
