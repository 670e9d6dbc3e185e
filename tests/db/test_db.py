"""Database layer: migrations, schema check, run lifecycle, concurrency. Every test runs on SQLite and
PostgreSQL (see conftest.db_url); the metric and probe store is tested in test_db_metrics.py."""

from __future__ import annotations

import multiprocessing as mp
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError

from db import RunNotFound, RunStateError, SchemaError, experiments, migrate, runs
from db.session import get_engine, redacted, session_scope
from db.tables import SqlRun


def make_runs(url: str, n: int = 1, ckpt: Path = Path("/ckpt"), **overrides: object) -> list[int]:
    exp = experiments.create_experiment(url, "skips", tags=["cifar", "sweep"])
    entries = [
        {
            "spec": {"family": "resnet", "depth": 20 + 6 * i, "dataset": "digits", "seed": 0},
            "config_hash": f"hash{i}",
            "label": f"resnet-{20 + 6 * i}",
            "family": "resnet",
            "depth": 20 + 6 * i,
            "dataset": "digits",
            "seed": 0,
            **overrides,
        }
        for i in range(n)
    ]
    return runs.add_runs(url, exp, entries, checkpoint_dir=ckpt)


def age_heartbeat(url: str, run_id: int, seconds: float) -> None:
    old = datetime.now(UTC) - timedelta(seconds=seconds)
    with session_scope(url) as s:
        s.execute(update(SqlRun).where(SqlRun.id == run_id).values(heartbeat_at=old))


# ---- schema ---------------------------------------------------------------------------------------------
def test_migrations_and_schema_check(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert migrate.check(db_url) == migrate.head() == migrate.newest_revision() == "0007"
    migrate.downgrade(db_url, "base")
    with pytest.raises(SchemaError, match=r"has no skipweb schema: run `skipweb db upgrade`"):
        migrate.check(db_url)
    migrate.upgrade(db_url)
    assert migrate.current(db_url) == "0007"
    # code newer than the database: the DB's known revision is behind head
    monkeypatch.setattr(migrate, "head", lambda: "0008")
    monkeypatch.setattr(migrate, "newest_revision", lambda: "0008")  # check's Alembic-free fast path
    with pytest.raises(
        SchemaError, match=r"is at revision 0007, skipweb needs 0008: run `skipweb db upgrade`"
    ):
        migrate.check(db_url)
    monkeypatch.undo()
    # database written by a newer skipweb
    with session_scope(db_url) as s:
        s.execute(text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = '0099'"))
    with pytest.raises(SchemaError, match=r"revision 0099, which this skipweb does not know"):
        migrate.check(db_url)
    with session_scope(db_url) as s:
        s.execute(text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = '0007'"))


def test_dropping_the_queue_column_keeps_every_row_and_never_reuses_an_id(db_url: str) -> None:
    """Migration 0007 copies the runs table on SQLite (batch mode): metrics of the runs stay (foreign keys are
    off while migrating, so the copy's DROP cascades nowhere), and the id sequence survives the copy."""
    from db import metrics
    from skipweb.training.sinks import MetricPoint

    migrate.downgrade(db_url, "0006")
    ids = make_runs(db_url, 3)
    metrics.write_batch(db_url, ids[0], [MetricPoint("train/loss", 1, 0.1, 2.5, 0.3)])
    runs.delete_run(db_url, ids[2])  # the newest id: on SQLite only the sequence remembers it
    migrate.upgrade(db_url)
    assert migrate.current(db_url) == "0007"
    with session_scope(db_url) as s:
        columns = set(s.execute(text("SELECT * FROM runs LIMIT 0")).keys())
    assert "queue" not in columns and "status" in columns
    assert {r.id for r in runs.list_runs(db_url)} == set(ids[:2])
    assert metrics.read_metrics(db_url, [ids[0]])["value"].tolist() == [2.5]
    assert make_runs(db_url)[0] > ids[2]


def test_error_messages_hide_passwords() -> None:
    assert (
        redacted("postgresql+psycopg://bob:s3cret@db:5432/skipweb")
        == "postgresql+psycopg://bob:***@db:5432/skipweb"
    )


def test_check_constraint_rejects_bad_status(db_url: str) -> None:
    (run_id,) = make_runs(db_url)
    with pytest.raises(IntegrityError), session_scope(db_url) as s:
        s.execute(update(SqlRun).where(SqlRun.id == run_id).values(status="exploded"))
    assert runs.get_run(db_url, run_id).status == "queued"  # rolled back


# ---- creating and listing ----------------------------------------------------------------------------
def test_add_get_list(db_url: str, tmp_path: Path) -> None:
    ids = make_runs(db_url, 3, ckpt=tmp_path / "ckpt")
    run = runs.get_run(db_url, ids[1])
    assert (run.status, run.attempts, run.label, run.depth) == ("queued", 0, "resnet-26", 26)
    assert run.spec == {"dataset": "digits", "depth": 26, "family": "resnet", "seed": 0}
    assert run.checkpoint_path.startswith(str((tmp_path / "ckpt").resolve() / f"run-{ids[1]}-"))
    assert run.created_at.tzinfo is not None and abs(run.created_at - datetime.now(UTC)) < timedelta(
        minutes=1
    )
    assert runs.get_run(db_url, 999) is None
    assert [r.id for r in runs.list_runs(db_url)] == ids[::-1]  # newest first
    assert [r.id for r in runs.list_runs(db_url, tag="sweep", limit=2)] == ids[:0:-1]
    assert runs.list_runs(db_url, tag="other") == [] and runs.list_runs(db_url, family="vgg") == []
    assert runs.queued_ids(db_url) == ids
    (exp,) = experiments.list_experiments(db_url)
    assert (exp.title, exp.tags, exp.counts) == ("skips", ["cifar", "sweep"], {"queued": 3})
    runs.claim(db_url, ids[0], "w1")
    runs.finish(db_url, ids[0], "w1", "succeeded")
    assert runs.succeeded_hashes(db_url, ["hash0", "hash1", "nope"]) == {"hash0": ids[0]}
    # what a submit skips: a succeeded run first, else a running or queued one (never failed or cancelled)
    runs.claim(db_url, ids[1], "w1")
    assert runs.duplicate_runs(db_url, ["hash0", "hash1", "hash2", "nope"]) == {
        "hash0": (ids[0], "succeeded"), "hash1": (ids[1], "running"), "hash2": (ids[2], "queued")}
    runs.request_cancel(db_url, ids[2])
    assert "hash2" not in runs.duplicate_runs(db_url, ["hash2"])
    assert [r.id for r in runs.list_runs(db_url, status=["succeeded", "failed"])] == [ids[0]]


# ---- lifecycle ---------------------------------------------------------------------------------------
def test_claim_heartbeat_cancel_finish(db_url: str) -> None:
    run_id, other = make_runs(db_url, 2)
    assert runs.claim(db_url, run_id, "w1", host="h1", device="cpu")
    assert not runs.claim(db_url, run_id, "w2")  # already running
    run = runs.get_run(db_url, run_id)
    assert (run.status, run.attempts, run.lease_owner, run.worker_host) == ("running", 1, "w1", "h1")
    assert run.started_at is not None and run.heartbeat_at.tzinfo is not None
    assert runs.heartbeat(db_url, run_id, "w1", {"steps_done": 50, "epochs_done": 2}) == "ok"
    assert runs.get_run(db_url, run_id).steps_done == 50
    assert runs.heartbeat(db_url, run_id, "w2") == "cancel"  # not its lease
    assert runs.request_cancel(db_url, run_id) == "requested"
    assert runs.heartbeat(db_url, run_id, "w1") == "cancel"
    assert runs.stop_requested(db_url, run_id, "w1")
    assert not runs.finish(db_url, run_id, "w2", "cancelled")
    with pytest.raises(ValueError, match="final status"):
        runs.finish(db_url, run_id, "w1", "running")
    assert runs.finish(db_url, run_id, "w1", "cancelled")
    run = runs.get_run(db_url, run_id)
    assert (run.status, run.lease_owner, run.reason) == ("cancelled", None, "cancelled on request")
    assert run.finished_at >= run.started_at
    with pytest.raises(RunStateError, match="already cancelled"):
        runs.request_cancel(db_url, run_id)
    assert runs.request_cancel(db_url, other) == "cancelled"
    assert runs.get_run(db_url, other).reason == "cancelled before it started"
    assert not runs.claim(db_url, other, "w1")
    with pytest.raises(RunNotFound):
        runs.request_cancel(db_url, 12345)


def test_concurrent_claims_one_winner(db_url: str) -> None:
    (run_id,) = make_runs(db_url)
    barrier, wins = threading.Barrier(6), []

    def claimer(i: int) -> None:
        barrier.wait()
        wins.append(runs.claim(db_url, run_id, f"w{i}"))

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 5 + [True]
    assert runs.get_run(db_url, run_id).attempts == 1


def test_requeue_expired(db_url: str) -> None:
    fresh, dead, doomed, cancelled = make_runs(db_url, 4)
    for run_id in (fresh, dead, doomed, cancelled):
        assert runs.claim(db_url, run_id, f"w{run_id}")
    first_start = runs.get_run(db_url, dead).started_at
    with session_scope(db_url) as s:  # doomed already used up its attempts
        s.execute(update(SqlRun).where(SqlRun.id == doomed).values(attempts=3))
    runs.request_cancel(db_url, cancelled)
    for run_id in (dead, doomed, cancelled):
        age_heartbeat(db_url, run_id, 600)
    assert runs.requeue_expired(db_url, lease_seconds=120, max_attempts=3) == ([dead], [doomed, cancelled])
    assert runs.requeue_expired(db_url, lease_seconds=120, max_attempts=3) == ([], [])
    run = runs.get_run(db_url, dead)
    assert (run.status, run.attempts, run.lease_owner) == ("queued", 1, None)
    assert run.reason == f"worker w{dead} stopped heartbeating; requeued"
    failed = runs.get_run(db_url, doomed)
    assert failed.status == "failed" and failed.finished_at is not None
    assert failed.reason == f"gave up after 3 attempts: its worker stopped heartbeating each time (last: w{doomed})"
    assert runs.get_run(db_url, cancelled).status == "cancelled"
    assert runs.get_run(db_url, fresh).status == "running"
    assert runs.heartbeat(db_url, dead, f"w{dead}") == "cancel"  # the old worker lost its lease
    assert runs.claim(db_url, dead, "w9")
    run = runs.get_run(db_url, dead)
    assert (run.attempts, run.started_at) == (2, first_start)


def test_concurrent_sweepers_requeue_once(db_url: str) -> None:
    ids = make_runs(db_url, 6)
    for run_id in ids:
        runs.claim(db_url, run_id, "w")
        age_heartbeat(db_url, run_id, 600)
    barrier, results = threading.Barrier(3), []

    def sweep() -> None:
        barrier.wait()
        results.append(runs.requeue_expired(db_url, 120, 3)[0])

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(i for r in results for i in r) == ids


def test_retry_mark_bad_spec_delete(db_url: str) -> None:
    a, b = make_runs(db_url, 2)
    with pytest.raises(RunStateError, match="only failed, cancelled, diverged"):
        runs.retry(db_url, a)
    assert runs.mark_bad_spec(db_url, a, "depth: must be 6n+2")
    assert runs.get_run(db_url, a).reason == "invalid spec: depth: must be 6n+2"
    new = runs.retry(db_url, a)
    old_rec, new_rec = runs.get_run(db_url, a), runs.get_run(db_url, new)
    assert (new_rec.status, new_rec.retry_of, new_rec.spec_json) == ("queued", a, old_rec.spec_json)
    assert f"/run-{new}-" in new_rec.checkpoint_path and new > b
    runs.claim(db_url, b, "w")
    with pytest.raises(RunStateError, match="running"):
        runs.delete_run(db_url, b)
    assert f"/run-{a}-" in runs.delete_run(db_url, a)
    assert runs.get_run(db_url, new).retry_of is None  # ON DELETE SET NULL
    with pytest.raises(RunNotFound):
        runs.delete_run(db_url, a)
    exp_id = runs.get_run(db_url, b).experiment_id
    with pytest.raises(RunStateError, match="running runs"):
        experiments.delete_experiment(db_url, exp_id)
    assert len(experiments.delete_experiment(db_url, exp_id, force=True)) == 2
    assert runs.list_runs(db_url) == [] and experiments.list_experiments(db_url) == []
    # ids are never reused, even on SQLite after deleting the newest row
    assert make_runs(db_url)[0] > new


# ---- several processes on one SQLite file -------------------------------------------------------------
def _process_writer(url: str, run_id: int, batches: int) -> str:
    """Runs in a spawned process: claim, heartbeat and write like a worker. Returns '' or the error."""
    from db import metrics as m
    from db import runs as r

    try:
        assert r.claim(url, run_id, f"p{run_id}")
        for i in range(batches):
            pts = [(k, i * 10 + j, i / 10, float(j), 0.1) for k in ("loss", "err") for j in range(10)]
            probes = [(i * 10, i / 10, [1.0] * 57, [2.0] * 57, [3.0] * 57)]
            assert m.write_batch(url, run_id, pts, probes, owner=f"p{run_id}")
            if i % 5 == 0:
                assert r.heartbeat(url, run_id, f"p{run_id}", {"steps_done": i * 10}) == "ok"
        return ""
    except Exception as e:  # reported to the parent, which asserts there is none
        return f"{type(e).__name__}: {e}"


@pytest.mark.slow
def test_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    migrate.upgrade(url)
    ids = make_runs(url, 3)
    with mp.get_context("spawn").Pool(3) as pool:
        errors = pool.starmap(_process_writer, [(url, run_id, 40) for run_id in ids])
    assert errors == ["", "", ""]
    with get_engine(url).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM metrics").scalar() == 3 * 40 * 20
        assert conn.exec_driver_sql("SELECT count(*) FROM probe_steps").scalar() == 3 * 40
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
