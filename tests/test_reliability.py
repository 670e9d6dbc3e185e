"""Reliability: real worker processes (``python -m skipweb worker``) against real services.

Each test builds its own data dir, database and broker namespace, starts workers as process groups with
short leases (6 s lease, 1 s heartbeat) and always kills them at teardown. Conditions are polled in the
database; a timeout prints every worker's log.

Modes: ``embedded`` = SQLite file + kombu filesystem broker in the data dir (no server);
``redis_pg`` = a fresh PostgreSQL database + Redis (db 9, flushed). RabbitMQ has one smoke test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = [pytest.mark.services, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/9"  # a db of its own, flushed per test
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
REDIS_START = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)
FINAL = ("succeeded", "failed", "diverged", "cancelled")
# tiny runs: digits is offline; mlp-2 on 64 samples trains in about a second
TINY = dict(dataset="digits", epochs=1, subset=64, batch_size=32, probe_every=10, device="cpu")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping())
    except Exception:
        return False


@dataclass
class Stack:
    """One isolated skipweb installation: data dir, database, broker, and the workers started on it."""

    tmp: Path
    db_url: str
    broker_url: str | None
    procs: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.tmp / "data"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SKIPWEB_")}
        env.update(
            SKIPWEB_DATA_DIR=str(self.data_dir),
            SKIPWEB_DATABASE_URL=self.db_url,
            SKIPWEB_LEASE_SECONDS="6",
            SKIPWEB_HEARTBEAT_SECONDS="1",
            SKIPWEB_MAX_ATTEMPTS="3",
            PYTHONPATH=str(REPO),
            CUDA_VISIBLE_DEVICES="",  # CPU workers consuming cpu,gpu
            OMP_NUM_THREADS="1",  # two cores shared with other jobs
            PYTHONUNBUFFERED="1",
        )
        if self.broker_url:
            env["SKIPWEB_BROKER_URL"] = self.broker_url
        return env

    def settings(self):
        from skipweb.settings import Settings

        return Settings(
            data_dir=self.data_dir,
            database_url=self.db_url,
            broker_url=self.broker_url,
            lease_seconds=6,
            heartbeat_seconds=1,
        )

    def celery(self):
        from workers.celery_app import make_app

        return make_app(self.settings())

    def start_worker(self) -> subprocess.Popen:
        log = self.tmp / f"worker-{len(self.procs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "skipweb", "worker", "--loglevel", "INFO"],
                env=self.env(),
                cwd=self.tmp,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc)

    def log_text(self, i: int) -> str:
        return self.logs[i].read_text(errors="replace")

    def dump_logs(self) -> str:
        return "\n".join(f"----- {p} -----\n{p.read_text(errors='replace')[-6000:]}" for p in self.logs)

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "skipweb", *args],
            env=self.env(),
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    # ---- database views ----------------------------------------------------------------------------
    def run(self, run_id: int):
        from db import runs

        return runs.get_run(self.db_url, run_id)

    def all_runs(self) -> list:
        from db import runs

        return runs.list_runs(self.db_url, limit=100_000)

    def wait(self, cond: Callable[[], bool], timeout: float, what: str, every: float = 0.5) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            dead = [p.pid for p in self.procs if p.poll() is not None and p.returncode not in (-9, None)]
            if dead:
                pytest.fail(f"worker(s) {dead} exited while waiting for {what}\n{self.dump_logs()}")
            time.sleep(every)
        states = {r.id: (r.status, r.attempts, r.epochs_done, r.reason) for r in self.all_runs()}
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; runs: {states}\n{self.dump_logs()}")

    def wait_final(self, run_ids: list[int], timeout: float) -> list:
        self.wait(
            lambda: all(self.run(i).status in FINAL for i in run_ids), timeout, f"runs {run_ids} to finish"
        )
        return [self.run(i) for i in run_ids]

    def submit(
        self, families: list[str], depths: list[int], seeds: list[int], options: dict | None = None, **base
    ) -> list[int]:
        from skipweb.launch import plan, submit

        specs = plan(families, depths, seeds, {**TINY, **base}, options)
        result = submit(specs, title="reliability", db=self.db_url, celery=self.celery())
        assert result.warning is None, result.warning
        return result.run_ids

    def broker_files(self) -> int:
        return len(list((self.data_dir / "broker" / "queue").glob("*")))


def _train_loss_steps(db_url: str, run_id: int) -> list[int]:
    from db.metrics import read_metrics

    df = read_metrics(db_url, [run_id], keys=["train/loss"])
    return [int(s) for s in df["step"]]


@pytest.fixture
def make_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator:
    """make_stack(db="sqlite"|"postgresql", broker=None|"redis"|"amqp") -> Stack; workers die at teardown."""
    from db import migrate
    from db.session import dispose_engine
    from skipweb.settings import get_settings

    stacks: list[Stack] = []

    def make(db: str = "sqlite", broker: str | None = None) -> Stack:
        if db == "sqlite":
            url = f"sqlite:///{tmp_path / 'skipweb.db'}"
            migrate.upgrade(url)
        else:
            url = request.getfixturevalue("pg_module_url")
            import db.tables  # noqa: F401
            from db.base import Base
            from db.session import get_engine

            tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
            with get_engine(url).begin() as conn:
                conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        broker_url = None
        if broker == "redis":
            if not _redis_answers():
                pytest.skip(f"Redis is not running at 127.0.0.1:6379; start it: {REDIS_START}")
            import redis

            redis.Redis.from_url(REDIS_URL).flushdb()
            broker_url = REDIS_URL
        elif broker == "amqp":
            if not _port_open(5672):
                pytest.skip("RabbitMQ is not running at 127.0.0.1:5672; start it: rabbitmq-server -detached")
            broker_url = AMQP_URL
        stack = Stack(tmp_path, url, broker_url)
        # in-process submits read get_settings() (checkpoint dir): point it at this stack
        for k, v in stack.env().items():
            if k.startswith("SKIPWEB_"):
                monkeypatch.setenv(k, v)
        if broker_url is None:
            monkeypatch.delenv("SKIPWEB_BROKER_URL", raising=False)
        monkeypatch.chdir(tmp_path)
        get_settings.cache_clear()
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop_all()
        dispose_engine(stack.db_url)
    get_settings.cache_clear()


MODES = [
    pytest.param(("sqlite", None), id="embedded"),
    pytest.param(("postgresql", "redis"), id="redis_pg"),
]


# ---- 1. a worker killed mid-run -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_killed_worker_run_resumes_without_gaps(make_stack, mode):
    stack = make_stack(*mode)
    [run_id] = stack.submit(["mlp"], [4], [0], dataset="digits", epochs=3, subset=None, batch_size=32)
    first = stack.start_worker()
    stack.wait(lambda: stack.run(run_id).epochs_done >= 1, 120, "the first epoch (a checkpoint)", every=0.2)
    stack.kill(first)
    killed = stack.run(run_id)
    assert killed.status == "running", f"the run ended before the kill ({killed.status}); make it longer"
    assert killed.attempts == 1

    stack.start_worker()
    [rec] = stack.wait_final([run_id], 180)
    assert rec.status == "succeeded", (rec.reason, stack.dump_logs())
    assert rec.attempts == 2
    assert rec.total_steps and rec.steps_done == rec.total_steps
    steps = _train_loss_steps(stack.db_url, run_id)
    assert len(steps) == len(set(steps)), "duplicate train/loss steps"
    assert steps == list(range(1, rec.total_steps + 1)), "train/loss history has gaps"
    assert "resumed from" in stack.log_text(1), "the second attempt did not resume from the checkpoint"


# ---- 1b. a worker killed mid-landscape ----------------------------------------------------------------
def test_killed_worker_landscape_job_is_requeued_and_succeeds(make_stack):
    from db import landscape_jobs as J
    from db.landscapes import latest_landscape
    from skipweb.launch import plan, submit

    stack = make_stack("sqlite", None)
    # a tiny resnet-8 run; its landscape (grid 41 over every training sample, ~1800 loss evaluations)
    # takes long enough on a CPU to be killed mid-way
    specs = plan(["resnet"], [8], [0], dict(TINY))
    result = submit(
        specs, title="landscape", db=stack.db_url, celery=stack.celery(), landscape={"grid": 41, "subset": 0}
    )
    [run_id], [job_id] = result.run_ids, result.landscape_job_ids
    first = stack.start_worker()
    stack.wait(
        lambda: J.get_job(stack.db_url, job_id).status == "running", 120, "the landscape job", every=0.1
    )
    stack.kill(first)
    killed = J.get_job(stack.db_url, job_id)
    assert killed.status == "running", f"the job ended before the kill ({killed.status}); make it longer"
    assert killed.attempts == 1 and killed.lease_owner

    stack.start_worker()  # its sweep requeues the job once the 6 s lease expires, and publishes it again
    stack.wait(
        lambda: J.get_job(stack.db_url, job_id).status in ("succeeded", "failed"),
        120,
        "the landscape job to end",
    )
    job = J.get_job(stack.db_url, job_id)
    assert (job.status, job.reason, job.attempts, job.lease_owner) == ("succeeded", None, 2, None)
    assert stack.run(run_id).status == "succeeded"
    surface = latest_landscape(stack.db_url, run_id)
    assert surface is not None and surface.grid == 41
    assert f"landscape jobs requeued [{job_id}]" in stack.log_text(1), stack.dump_logs()


# ---- 2. Redis restarted while runs wait ---------------------------------------------------------------
def _restart_redis() -> None:
    subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], capture_output=True, timeout=30)
    deadline = time.monotonic() + 20
    while _port_open(6379) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _port_open(6379), "redis did not shut down"
    subprocess.run(REDIS_START, shell=True, check=True, timeout=30)
    deadline = time.monotonic() + 20
    while not _redis_answers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _redis_answers(), "redis did not come back"


def test_redis_restart_loses_no_queued_run(make_stack):
    import redis

    stack = make_stack("sqlite", "redis")
    ids = stack.submit(["mlp"], [2], [1, 2, 3])
    client = redis.Redis.from_url(REDIS_URL)
    assert client.llen("cpu") == 3
    try:
        _restart_redis()
    finally:
        if not _redis_answers():  # leave the machine as we found it
            subprocess.run(REDIS_START, shell=True, timeout=30)
    assert client.llen("cpu") == 0, "the restart was expected to drop the messages (no persistence)"
    t0 = time.monotonic()
    stack.start_worker()
    # the sweeper republishes queued runs older than 30 s once the broker's queues are empty
    records = stack.wait_final(ids, 150)
    assert [r.status for r in records] == ["succeeded"] * 3, [(r.status, r.reason) for r in records]
    assert [r.attempts for r in records] == [1, 1, 1]
    log = stack.log_text(0)
    assert "republished" in log, log[-3000:]
    print(f"recovered 3 runs {time.monotonic() - t0:.0f} s after the worker started")


# ---- 3. concurrent submissions ---------------------------------------------------------------------------
def test_fifty_concurrent_submissions_each_train_once(make_stack):
    stack = make_stack("sqlite", None)
    from skipweb.launch import plan, submit

    celery = stack.celery()

    def one(seed: int) -> list[int]:
        specs = plan(["mlp"], [2], [seed], {**TINY, "epochs": 1, "subset": 64})
        result = submit(specs, title=f"concurrent {seed}", db=stack.db_url, celery=celery)
        assert result.warning is None, result.warning
        return result.run_ids

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = [i for r in pool.map(one, range(100, 150)) for i in r]
    t_submit = time.monotonic() - t0
    assert len(ids) == 50 and len(set(ids)) == 50
    assert len(stack.all_runs()) == 50
    assert stack.broker_files() == 50

    stack.start_worker()
    t1 = time.monotonic()
    records = stack.wait_final(ids, 300)
    t_train = time.monotonic() - t1
    bad = [
        (r.id, r.status, r.attempts, r.reason) for r in records if r.status != "succeeded" or r.attempts != 1
    ]
    assert not bad, bad
    log = stack.log_text(0)
    assert log.count(": succeeded") == 50, "some run was trained more or less than once"
    print(f"50 submissions in {t_submit:.1f} s; trained in {t_train:.0f} s")


# ---- 4. failures, divergence and cancellation keep a reason and their metrics ----------------------------
def test_failed_diverged_cancelled_runs_end_with_reasons(make_stack):
    stack = make_stack("sqlite", None)
    [missing] = stack.submit(["mlp"], [2], [0], dataset="cifar10", subset=None)  # offline: no download
    [diverge] = stack.submit(
        ["plain"],
        [8],
        [0],
        {"norm": "none"},
        lr=10.0,
        schedule="constant",
        subset=256,
        epochs=2,
        batch_size=16,
        probe_every=1,
    )
    [cancel] = stack.submit(["mlp"], [4], [0], subset=None, epochs=50, batch_size=16)
    stack.start_worker()

    stack.wait(
        lambda: stack.run(cancel).status == "running" and len(_train_loss_steps(stack.db_url, cancel)) > 0,
        180,
        "the long run to record its first steps",
    )
    out = stack.cli("cancel", str(cancel))
    assert out.returncode == 0, out.stderr
    recs = {r.id: r for r in stack.wait_final([missing, diverge, cancel], 120)}

    m = recs[missing]
    assert m.status == "failed"
    assert "could not be downloaded" in m.reason and "\n" not in m.reason, m.reason

    d = recs[diverge]
    assert d.status == "diverged", (d.status, d.reason)
    assert re.search(r"training loss became (nan|inf|-inf) at step \d+", d.reason), d.reason
    assert _train_loss_steps(stack.db_url, diverge), "the diverged run's metrics were not kept"

    c = recs[cancel]
    assert c.status == "cancelled" and c.reason == "cancelled on request", (c.status, c.reason)
    steps = _train_loss_steps(stack.db_url, cancel)
    assert steps and steps == list(range(1, len(steps) + 1)), "the cancelled run's metrics were not kept"
    assert c.attempts == 1


# ---- 5. two workers on one SQLite file -------------------------------------------------------------------
def test_two_workers_share_one_sqlite_database(make_stack):
    stack = make_stack("sqlite", None)
    ids = stack.submit(["mlp"], [2], list(range(6)), subset=256, epochs=2, batch_size=8, probe_every=1)
    stack.start_worker()
    stack.start_worker()
    records = stack.wait_final(ids, 240)
    assert [r.status for r in records] == ["succeeded"] * 6, [(r.status, r.reason) for r in records]
    assert all(r.attempts == 1 for r in records)
    for i in (0, 1):
        log = stack.log_text(i)
        assert "database is locked" not in log, log[-3000:]
        assert ": succeeded" in log, f"worker {i} trained nothing, so nothing ran concurrently"


# ---- 6. bad submissions ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["nope", "--depth", "20"], id="unknown-family"),
        pytest.param(["resnet", "--depth", "21"], id="invalid-depth"),
        pytest.param(["mlp", "--depth", "2", "--dataset", "nope"], id="unknown-dataset"),
    ],
)
def test_bad_cli_submission_is_rejected_and_queues_nothing(make_stack, args):
    stack = make_stack("sqlite", None)
    stack.celery()  # creates the broker folders
    before = (len(stack.all_runs()), stack.broker_files())
    out = stack.cli("submit", *args, "--epochs", "1", "--seeds", "0", "--json")
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = [ln for ln in (out.stderr + out.stdout).splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert (len(stack.all_runs()), stack.broker_files()) == before


def test_malformed_spec_in_database_fails_with_reason(make_stack):
    from db import experiments, runs
    from workers.celery_app import enqueue

    stack = make_stack("sqlite", None)
    base = {"config_hash": "x", "label": "bad", "family": "mlp", "depth": 2, "dataset": "digits", "seed": 0}
    exp = experiments.create_experiment(stack.db_url, "bad specs", "")
    bad = runs.add_runs(
        stack.db_url,
        exp,
        [
            {**base, "spec": {"family": "nope", "depth": 2, "dataset": "digits"}},
            {**base, "spec": {"depth": 2}},  # required fields missing
            {**base, "spec": {**TINY, "family": "mlp", "depth": 2, "bogus": 1}},  # unknown field
        ],
    )
    [good] = stack.submit(["mlp"], [2], [0])
    enqueue(bad, celery=stack.celery())
    stack.start_worker()
    recs = stack.wait_final([*bad, good], 120)
    for r in recs[:3]:
        assert r.status == "failed" and r.reason.startswith("invalid spec:"), (r.status, r.reason)
        assert "\n" not in r.reason
    assert recs[3].status == "succeeded", recs[3].reason


# ---- RabbitMQ smoke ----------------------------------------------------------------------------------------
def test_rabbitmq_broker_trains_a_run(make_stack):
    stack = make_stack("sqlite", "amqp")
    out = stack.cli(
        "submit",
        "mlp",
        "--depth",
        "2",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--subset",
        "64",
        "--seeds",
        "7",
        "--device",
        "cpu",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["run_ids"]) == 1 and "warning" not in result
    stack.start_worker()
    [rec] = stack.wait_final(result["run_ids"], 120)
    assert rec.status == "succeeded", (rec.reason, stack.dump_logs())
    assert rec.attempts == 1
