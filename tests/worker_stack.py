"""Real worker processes against real services, for the reliability tests: ``make_stack`` (the
fixture of that name in conftest.py).

See tests/reliability/test_reliability.py for what the modes are. Imported by the test modules that
start workers (reliability/, services/test_routing.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import ROOT

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
    overrides: dict[str, str] = field(default_factory=dict)  # SKIPWEB_* settings of this stack's workers

    @property
    def data_dir(self) -> Path:
        return self.tmp / "data"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SKIPWEB_")}
        env.update(
            SKIPWEB_DATA_DIR=str(self.data_dir),
            SKIPWEB_DATABASE_URL=self.db_url,
            SKIPWEB_LEASE_SECONDS="6",
            SKIPWEB_REPUBLISH_SECONDS="5",  # a lost message is published again after 5 s, not 30
            SKIPWEB_HEARTBEAT_SECONDS="1",
            SKIPWEB_MAX_ATTEMPTS="3",
            PYTHONPATH=str(ROOT),
            CUDA_VISIBLE_DEVICES="",  # CPU workers (cpu, any); `--gpus 0` makes a stand-in GPU worker (gpu, any)
            OMP_NUM_THREADS="1",  # two cores shared with other jobs
            PYTHONUNBUFFERED="1",
        )
        if self.broker_url:
            env["SKIPWEB_BROKER_URL"] = self.broker_url
        env.update(self.overrides)
        return env

    def settings(self):
        from skipweb.settings import Settings

        return Settings(
            data_dir=self.data_dir,
            database_url=self.db_url,
            broker_url=self.broker_url,
            lease_seconds=6,
            heartbeat_seconds=1,
            republish_seconds=5,
        )

    def celery(self):
        from skipweb.services.broker import make_app

        return make_app(self.settings())

    def start_worker(self, *args: str) -> subprocess.Popen:
        """``skipweb worker`` (a CPU worker: CUDA_VISIBLE_DEVICES is empty) with ``args``, e.g. ``--gpus 0``."""
        log = self.tmp / f"worker-{len(self.procs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "skipweb", "worker", "--loglevel", "INFO", *args],
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

    def connected(self) -> list:
        from db.workers import connected

        return connected(self.db_url, 30)

    def submit(
        self, families: list[str], depths: list[int], seeds: list[int], options: dict | None = None, **base
    ) -> list[int]:
        from skipweb.grid import plan
        from skipweb.services.launch import submit

        specs = plan(families, depths, seeds, {**TINY, **base}, options)
        result = submit(specs, title="reliability", db=self.db_url, celery=self.celery())
        assert result.warning is None, result.warning
        return result.run_ids

    def submit_unchecked(self, families: list[str], depths: list[int], seeds: list[int], **base) -> list[int]:
        """Rows and messages as submit writes them, without its check that the data loads here."""
        from db import experiments, runs
        from skipweb.grid import plan, row
        from skipweb.services.broker import enqueue

        specs = plan(families, depths, seeds, {**TINY, **base})
        exp = experiments.create_experiment(self.db_url, "unchecked")
        ckpt = self.settings().checkpoint_dir  # this stack's, whatever this process's settings say
        ids = runs.add_runs(self.db_url, exp, [row(s) for s in specs], checkpoint_dir=ckpt)
        enqueue(ids, queue="cpu", celery=self.celery())  # TINY runs ask for the cpu
        return ids

    def broker_files(self) -> int:
        return len(list((self.data_dir / "broker" / "queue").glob("*")))


def _train_loss_steps(db_url: str, run_id: int) -> list[int]:
    from db.metrics import read_metrics

    df = read_metrics(db_url, [run_id], keys=["train/loss"])
    return [int(s) for s in df["step"]]


def make_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator:
    """make_stack(db="sqlite"|"postgresql"|URL, broker=None|"redis"|"amqp"|URL, env={SKIPWEB_*: ...}) -> Stack;
    workers die at teardown. A database URL (e.g. a private cluster's fresh database) is migrated; a ``redis://`` URL is
    flushed and used instead of the shared Redis."""
    from db import migrate
    from db.session import dispose_engine
    from skipweb.settings import get_settings

    stacks: list[Stack] = []

    def make(db: str = "sqlite", broker: str | None = None, env: dict[str, str] | None = None) -> Stack:
        if db == "sqlite":
            url = f"sqlite:///{tmp_path / 'skipweb.db'}"
            migrate.upgrade(url)
        elif "://" in db:
            url = db
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
        if broker and broker.startswith("redis://"):
            import redis

            redis.Redis.from_url(broker).flushdb()
            broker_url = broker
        elif broker == "redis":
            if not _redis_answers():
                pytest.skip(f"Redis is not running at 127.0.0.1:6379; start it: {REDIS_START}")
            import redis

            redis.Redis.from_url(REDIS_URL).flushdb()
            broker_url = REDIS_URL
        elif broker == "amqp":
            if not _port_open(5672):
                pytest.skip("RabbitMQ is not running at 127.0.0.1:5672; start it: rabbitmq-server -detached")
            broker_url = AMQP_URL
        stack = Stack(tmp_path, url, broker_url, overrides=dict(env or {}))
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
