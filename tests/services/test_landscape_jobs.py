"""Loss-landscape jobs: the db functions on SQLite and PostgreSQL, a submission that asks for landscapes,
and the whole path through a real embedded-mode worker process (a tiny run whose pending job succeeds)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests import ROOT


def _runs(url: str, n: int) -> list[int]:
    from db import experiments, runs

    exp = experiments.create_experiment(url, "landscapes")
    entry = {"spec": "{}", "label": "resnet-8", "family": "resnet", "depth": 8, "dataset": "digits"}
    return runs.add_runs(url, exp, [{**entry, "config_hash": f"h{i}", "seed": i} for i in range(n)])


def test_create_claim_finish_list(db_url) -> None:
    from db import landscape_jobs as J
    from skipweb import facts

    a, b = _runs(db_url, 2)
    first = J.create_job(db_url, a)
    job = J.get_job(db_url, first)
    assert (job.status, job.grid, job.range, job.subset, job.seed) == (
        "queued",
        facts.LANDSCAPE_GRID,
        facts.LANDSCAPE_RANGE,
        facts.LANDSCAPE_SUBSET,
        facts.LANDSCAPE_SEED,
    )
    assert job.created_at.tzinfo is not None and job.finished_at is None
    pending = J.create_jobs(db_url, [a, b], status="pending", grid=5, range_=0.5, subset=0, seed=3)
    assert J.get_job(db_url, pending[1]).subset is None  # 0: every sample
    for grid in (0, 1, 2, 202):  # a surface has a centre and neighbours; the CLI's --grid is 3 to 201 too
        with pytest.raises(ValueError, match="3 to 201"):
            J.create_job(db_url, a, grid=grid)
    with pytest.raises(ValueError):
        J.create_job(db_url, a, status="running")

    claimed = J.claim(db_url, first, "w1")
    assert claimed is not None and claimed.status == "running" and claimed.run_id == a
    assert J.claim(db_url, first, "w2") is None  # a redelivered message finds it taken
    assert J.claim(db_url, pending[0], "w1") is None  # pending: not yet
    assert J.claim(db_url, 999, "w1") is None
    assert not J.finish(db_url, first, "failed", "boom", owner="w2")  # only the lease holder ends it
    assert J.finish(db_url, first, "failed", "UserError: boom\n  traceback line", owner="w1")
    assert not J.finish(db_url, first, "succeeded", owner="w1")  # only a running job ends
    done = J.get_job(db_url, first)
    assert done.status == "failed" and done.reason == "UserError: boom" and done.finished_at is not None

    assert [j.id for j in J.list_jobs(db_url, a)] == [pending[0], first]  # newest first
    assert {r: j.id for r, j in J.latest_jobs(db_url, [a, b]).items()} == {a: pending[0], b: pending[1]}
    assert J.latest_jobs(db_url, []) == {}


def test_pending_jobs_follow_their_run(db_url) -> None:
    from db import landscape_jobs as J
    from db import runs

    a, b, c = _runs(db_url, 3)
    ja, jb, jc = J.create_jobs(db_url, [a, b, c], status="pending")
    assert J.release_pending(db_url, a) == [ja]
    assert J.release_pending(db_url, a) == []  # already moved
    assert J.get_job(db_url, ja).status == "queued"
    assert J.fail_pending(db_url, b, J.run_ended_reason(b, "failed")) == [jb]
    failed = J.get_job(db_url, jb)
    assert failed.status == "failed" and failed.reason == f"run {b} ended failed; no final weights"
    # the sweep settles a pending job whose run ended without its worker doing it (cancelled while queued)
    assert J.settle_pending(db_url) == ([], [])  # c is still queued
    assert runs.request_cancel(db_url, c) == "cancelled"
    assert J.settle_pending(db_url) == ([], [jc])
    assert J.get_job(db_url, jc).reason == f"run {c} ended cancelled; no final weights"
    assert J.queued_jobs(db_url) == [(ja, a)]
    assert J.queued_jobs(db_url, older_than=3600) == []


def test_claim_is_atomic_under_contention(db_url) -> None:
    from db import landscape_jobs as J

    (run,) = _runs(db_url, 1)
    job = J.create_job(db_url, run, grid=3)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: J.claim(db_url, job, f"w{i}"), range(8)))
    assert sum(g is not None for g in got) == 1
    assert J.get_job(db_url, job).attempts == 1


# ---- leases: a worker killed mid-landscape does not leave its job running forever --------------------------
def age_job(url: str, job_id: int, seconds: float) -> None:
    """Make the job's last heartbeat ``seconds`` old (as test_db.age_heartbeat does for runs)."""
    from sqlalchemy import update

    from db.session import session_scope
    from db.tables import SqlLandscapeJob

    old = datetime.now(UTC) - timedelta(seconds=seconds)
    with session_scope(url) as s:
        s.execute(update(SqlLandscapeJob).where(SqlLandscapeJob.id == job_id).values(heartbeat_at=old))


def test_claim_takes_a_lease_that_fences_heartbeat_and_finish(db_url) -> None:
    from db import landscape_jobs as J

    (run,) = _runs(db_url, 1)
    job_id = J.create_job(db_url, run, grid=3)
    fresh = J.get_job(db_url, job_id)
    assert (fresh.attempts, fresh.lease_owner, fresh.heartbeat_at, fresh.started_at) == (0, None, None, None)
    job = J.claim(db_url, job_id, "w1")
    assert (job.status, job.attempts, job.lease_owner) == ("running", 1, "w1")
    assert job.heartbeat_at.tzinfo is not None and job.started_at.tzinfo is not None
    assert abs(job.heartbeat_at - datetime.now(UTC)) < timedelta(minutes=1)
    age_job(db_url, job_id, 60)
    assert J.heartbeat(db_url, job_id, "w1")
    assert J.get_job(db_url, job_id).heartbeat_at > datetime.now(UTC) - timedelta(seconds=30)
    assert not J.heartbeat(db_url, job_id, "w2")  # not its lease
    assert not J.finish(db_url, job_id, "succeeded", owner="w2")
    assert J.finish(db_url, job_id, "succeeded", owner="w1")
    done = J.get_job(db_url, job_id)
    assert (done.status, done.lease_owner, done.attempts) == ("succeeded", None, 1)
    assert not J.heartbeat(db_url, job_id, "w1")  # ended: the worker should stop


def test_expired_job_is_requeued_then_fails_past_max_attempts(db_url) -> None:
    from db import landscape_jobs as J

    (run,) = _runs(db_url, 1)
    live, dead = J.create_jobs(db_url, [run, run], grid=3)
    assert J.claim(db_url, live, "w-live") and J.claim(db_url, dead, "w-dead")
    first_start = J.get_job(db_url, dead).started_at
    age_job(db_url, dead, 600)
    assert J.requeue_expired_jobs(db_url, lease_seconds=120, max_attempts=2) == ([dead], [])
    assert J.requeue_expired_jobs(db_url, lease_seconds=120, max_attempts=2) == ([], [])
    job = J.get_job(db_url, dead)
    assert (job.status, job.attempts, job.lease_owner, job.heartbeat_at) == ("queued", 1, None, None)
    assert job.reason == "worker w-dead stopped heartbeating; requeued" and job.finished_at is None
    assert J.get_job(db_url, live).status == "running"
    # the killed worker, had it survived, finds its lease gone and records nothing
    assert not J.heartbeat(db_url, dead, "w-dead")
    assert not J.finish(db_url, dead, "succeeded", owner="w-dead")
    assert J.queued_jobs(db_url) == [(dead, run)]  # what the sweep publishes again

    again = J.claim(db_url, dead, "w2")
    assert (again.attempts, again.lease_owner, again.started_at) == (2, "w2", first_start)
    age_job(db_url, dead, 600)
    assert J.requeue_expired_jobs(db_url, lease_seconds=120, max_attempts=2) == ([], [dead])
    gone = J.get_job(db_url, dead)
    assert (gone.status, gone.lease_owner, gone.attempts) == ("failed", None, 2)
    assert gone.reason == "gave up after 2 attempts: its worker stopped heartbeating each time (last: w2)" and gone.finished_at is not None
    assert J.requeue_expired_jobs(db_url, lease_seconds=120, max_attempts=2) == ([], [])


def test_live_heartbeat_prevents_requeue(db_url) -> None:
    from db import landscape_jobs as J

    (run,) = _runs(db_url, 1)
    job_id = J.create_job(db_url, run, grid=3)
    assert J.claim(db_url, job_id, "w1")
    age_job(db_url, job_id, 100)
    assert J.requeue_expired_jobs(db_url, lease_seconds=120, max_attempts=3) == ([], [])
    age_job(db_url, job_id, 600)
    assert J.heartbeat(db_url, job_id, "w1")  # renewed just before the sweep
    assert J.requeue_expired_jobs(db_url, lease_seconds=120, max_attempts=3) == ([], [])
    job = J.get_job(db_url, job_id)
    assert (job.status, job.lease_owner, job.attempts) == ("running", "w1", 1)


def test_heartbeat_thread_renews_the_lease_and_stops_when_it_is_lost(db_url) -> None:
    from sqlalchemy import update

    from db import landscape_jobs as J
    from db.session import session_scope
    from db.tables import SqlLandscapeJob
    from skipweb.services.execution import Heartbeat

    (run,) = _runs(db_url, 1)
    job_id = J.create_job(db_url, run, grid=3)
    assert J.claim(db_url, job_id, "w1")
    age_job(db_url, job_id, 600)
    beat = Heartbeat(lambda: J.heartbeat(db_url, job_id, "w1"), 0.05, name="test-beat")
    beat.start()
    try:
        deadline = time.monotonic() + 10
        while J.get_job(db_url, job_id).heartbeat_at < datetime.now(UTC) - timedelta(seconds=60):
            assert time.monotonic() < deadline, "the thread did not renew the lease"
            time.sleep(0.05)
        assert J.requeue_expired_jobs(db_url, lease_seconds=60, max_attempts=3) == ([], [])
        assert not beat.stop.is_set()
        with session_scope(db_url) as s:  # the sweep took the job back (as after a missed lease)
            s.execute(
                update(SqlLandscapeJob)
                .where(SqlLandscapeJob.id == job_id)
                .values(status="queued", lease_owner=None, heartbeat_at=None)
            )
        assert beat.stop.wait(10), "the worker was not told its lease is gone"
    finally:
        beat.close()
        beat.join(5)


def test_migration_0004_keeps_jobs_and_constraints(db_url) -> None:
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    from db import landscape_jobs as J
    from db import migrate
    from db.session import dispose_engine, session_scope
    from db.tables import SqlLandscapeJob

    (run,) = _runs(db_url, 1)
    job_id = J.create_job(db_url, run, grid=3)
    assert J.claim(db_url, job_id, "w1")
    migrate.downgrade(db_url, "0003")
    dispose_engine(db_url)  # pooled connections may have cached the old table layout
    migrate.upgrade(db_url)
    job = J.get_job(db_url, job_id)  # the row survived both ways; the lease columns start empty
    assert (job.status, job.grid, job.attempts, job.lease_owner, job.heartbeat_at) == (
        "running",
        3,
        0,
        None,
        None,
    )
    with pytest.raises(IntegrityError), session_scope(db_url) as s:
        s.execute(update(SqlLandscapeJob).where(SqlLandscapeJob.id == job_id).values(status="exploded"))


def test_submit_with_landscape_writes_pending_jobs_or_nothing(db_url, tmp_path) -> None:
    from db import landscape_jobs as J
    from db.run_queries import list_runs
    from skipweb.grid import plan
    from skipweb.services.broker import make_app
    from skipweb.services.launch import submit
    from skipweb.settings import Settings
    from skipweb.spec import SpecError

    celery = make_app(Settings(data_dir=tmp_path))
    specs = plan(["mlp"], [2], [0, 1], {"dataset": "digits", "epochs": 1, "device": "cpu"})
    with pytest.raises(SpecError, match="loss landscape"):
        submit(specs, title="t", db=db_url, celery=celery, landscape={"grid": -1})
    assert list_runs(db_url) == []  # nothing half-queued
    result = submit(specs, title="t", db=db_url, celery=celery, landscape={"grid": 5})
    assert len(result.landscape_job_ids) == 2 and result.as_json()["landscape_job_ids"]
    jobs = [J.get_job(db_url, j) for j in result.landscape_job_ids]
    assert [(j.run_id, j.status, j.grid) for j in jobs] == [(r, "pending", 5) for r in result.run_ids]


# ---- a real worker process, embedded mode (SQLite + the filesystem broker) ------------------------------
@pytest.mark.services
@pytest.mark.slow
def test_worker_computes_pending_landscape_after_training(tmp_path, monkeypatch) -> None:
    from db import landscape_jobs as J
    from db import migrate, runs
    from db.landscapes import latest_landscape
    from db.session import dispose_engine
    from skipweb.grid import plan
    from skipweb.services.broker import enqueue_landscapes, make_app
    from skipweb.services.launch import submit
    from skipweb.settings import Settings, get_settings

    data = tmp_path / "data"
    url = f"sqlite:///{tmp_path / 'skipweb.db'}"
    migrate.upgrade(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKIPWEB_")}
    env.update(
        SKIPWEB_DATA_DIR=str(data),
        SKIPWEB_DATABASE_URL=url,
        SKIPWEB_LEASE_SECONDS="6",
        SKIPWEB_HEARTBEAT_SECONDS="1",
        PYTHONPATH=str(ROOT),
        CUDA_VISIBLE_DEVICES="",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    for k, v in env.items():
        if k.startswith("SKIPWEB_"):
            monkeypatch.setenv(k, v)  # submit's checkpoint dir comes from the settings
    get_settings.cache_clear()
    celery = make_app(Settings(data_dir=data, database_url=url))
    base = {
        "dataset": "digits",
        "epochs": 1,
        "subset": 64,
        "batch_size": 32,
        "probe_every": 10,
        "device": "cpu",
    }
    specs = plan(["resnet"], [8], [0, 1], base)
    result = submit(specs, title="t", db=url, celery=celery, landscape={"grid": 5, "subset": 64})
    ok, cancelled = result.run_ids
    job_ok, job_cancelled = result.landscape_job_ids
    assert runs.request_cancel(url, cancelled) == "cancelled"  # its pending job fails in the worker's sweep
    job_no_ckpt = J.create_job(url, cancelled, grid=3)  # queued by hand: the worker finds no weights
    enqueue_landscapes([job_no_ckpt], celery=celery)

    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "skipweb", "worker", "--loglevel", "INFO"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        ids = (job_ok, job_cancelled, job_no_ckpt)
        while time.monotonic() < deadline:
            if (
                all(J.get_job(url, j).status in ("succeeded", "failed") for j in ids)
                or proc.poll() is not None
            ):
                break
            time.sleep(0.5)
        jobs = {j: J.get_job(url, j) for j in ids}
        states = {j: (r.status, r.reason) for j, r in jobs.items()}
        assert all(r.status in ("succeeded", "failed") for r in jobs.values()), (
            states,
            log.read_text()[-4000:],
        )
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=30)
        get_settings.cache_clear()
    assert runs.get_run(url, ok).status == "succeeded"
    assert jobs[job_ok].status == "succeeded", states
    assert jobs[job_cancelled].reason == f"run {cancelled} ended cancelled; no final weights"
    assert jobs[job_no_ckpt].status == "failed" and "it never ran, so it has no weights" in jobs[job_no_ckpt].reason
    surface = latest_landscape(url, ok)
    assert surface is not None and surface.grid == 5 and surface.subset == 64 and len(surface.loss) == 5
    assert latest_landscape(url, ok, "interp") is not None
    assert latest_landscape(url, cancelled) is None
    dispose_engine(url)


def test_sweep_settles_pending_and_republishes_lost_jobs(db_url, tmp_path) -> None:
    from db import landscape_jobs as J
    from db import runs
    from db.session import get_engine
    from skipweb.services.broker import make_app
    from skipweb.services.recovery import sweep_landscapes
    from skipweb.settings import Settings

    a, b = _runs(db_url, 2)
    ja, jb = J.create_jobs(db_url, [a, b], status="pending")
    assert runs.claim(db_url, a, "w") and runs.finish(db_url, a, "w", "succeeded")
    assert runs.claim(db_url, b, "w") and runs.finish(db_url, b, "w", "diverged", "loss is nan")
    celery, queue = make_app(Settings(data_dir=tmp_path)), tmp_path / "broker" / "queue"
    # the worker died between finishing run a and queueing its job: the sweep does it
    assert sweep_landscapes(celery, get_engine(db_url)) == {
        "landscapes_requeued": [],
        "landscapes_failed": [jb],
        "landscapes_published": [ja],
    }
    assert len(list(queue.iterdir())) == 1
    at_once = Settings(data_dir=tmp_path, republish_seconds=0)
    assert sweep_landscapes(celery, get_engine(db_url), settings=at_once)["landscapes_published"] == []
    for f in queue.iterdir():  # the broker lost the message
        f.unlink()
    assert sweep_landscapes(celery, get_engine(db_url), settings=at_once)["landscapes_published"] == [ja]
    assert J.get_job(db_url, ja).status == "queued"


def test_sweep_requeues_and_publishes_jobs_of_dead_workers(db_url, tmp_path) -> None:
    from sqlalchemy import update

    from db import landscape_jobs as J
    from db.session import get_engine, session_scope
    from db.tables import SqlLandscapeJob
    from skipweb.services.broker import make_app
    from skipweb.services.recovery import sweep_landscapes
    from skipweb.settings import Settings

    (run,) = _runs(db_url, 1)
    dead, doomed = J.create_jobs(db_url, [run, run], grid=3)
    assert J.claim(db_url, dead, "w-dead") and J.claim(db_url, doomed, "w-doomed")
    with session_scope(db_url) as s:  # doomed already used up its attempts
        s.execute(update(SqlLandscapeJob).where(SqlLandscapeJob.id == doomed).values(attempts=3))
    age_job(db_url, dead, 600)
    age_job(db_url, doomed, 600)
    settings = Settings(data_dir=tmp_path, lease_seconds=120, max_attempts=3)
    celery, queue = make_app(settings), tmp_path / "broker" / "queue"
    assert sweep_landscapes(celery, get_engine(db_url), settings=settings) == {
        "landscapes_requeued": [dead],
        "landscapes_failed": [doomed],
        "landscapes_published": [dead],
    }
    assert len(list(queue.iterdir())) == 1  # published at once, not after republish_seconds
    assert J.get_job(db_url, doomed).reason == "gave up after 3 attempts: its worker stopped heartbeating each time (last: w-doomed)"
