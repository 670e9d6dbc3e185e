"""Issue 11: the outage matrix. Real worker processes (``python -m skipweb worker``: 6 s lease, 1 s
heartbeat, the default 120 s database retry budget) against a PostgreSQL cluster and a Redis server that
this module starts for itself (never the shared ones), so it can stop, restart and cut them:

=====================================  ===========================================================
worker SIGKILL                         the run's worker killed mid-run; the other worker resumes it
worker SIGSTOP past its lease          the run's worker frozen until the other one has finished the
                                       run, then SIGCONT: it must write nothing more
PostgreSQL stopped 30 s                ``pg_ctl stop -m fast`` mid-run, started again 30 s later
PostgreSQL connections terminated      ``pg_terminate_backend`` on the worker's backends mid-run
Redis stopped 30 s                     while one run trains and another waits in the queue
SQLite locked 40 s (embedded mode)     another connection holds the write lock (``BEGIN IMMEDIATE``)
=====================================  ===========================================================

Every fault is triggered on an event (the run has finished an epoch, so it has a checkpoint, and is
still running); only the outage lengths and the SIGSTOP are clock-based, because they are the fault.
Each row records the run's final status, its attempts, lost metric rows (expected ``train/loss`` steps
1..total_steps and ``epoch/train_loss`` epochs 1..E that are missing), duplicated rows (a (key, step)
stored twice) and whether the checkpoint's step is the run's last step. The goal, asserted: every run
succeeded, 0 lost, 0 duplicated, every checkpoint current. Attempts are asserted as the design promises:
a worker that died or lost its lease used an attempt (2), a database or broker outage did not (1).

The SQLite row shares nothing with the others (its own file, broker folder and worker), so it runs beside
them in a thread started with the module (``embedded_lane``); the rest run one after another on the
private services (each test its own database and a flushed Redis).

``.venv/bin/python -m pytest tests/reliability/test_outage_matrix.py -s`` prints the matrix as a markdown table
(it is also written to ``outage_matrix.md`` in pytest's temporary directory).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from skipweb.facts import CHECKPOINT_NAME
from tests.worker_stack import FINAL, Stack, _train_loss_steps

pytestmark = [pytest.mark.services, pytest.mark.slow]

# mlp-4 on 320 digits: 10 steps an epoch, 20 epochs (about 5 s in a worker on a busy core). A fault lands
# right after the first epoch, with 19 epochs to go: the few calls between the event and the fault cannot
# outlast them however loaded the machine is (both slow down alike); each test asserts it landed mid-run.
EPOCHS = 20
LONG = dict(dataset="digits", epochs=EPOCHS, subset=320, batch_size=32, probe_every=10)
OUTAGE_S = 30.0
SQLITE_LOCK_S = 40.0
WAIT_S = 600.0  # bounds a failure only; a passing wait ends on its event (a busy machine can be 8x slower)

PG_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _until(cond, timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


# ---- private services ------------------------------------------------------------------------------------
class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free port: data in a /tmp folder owned by postgres, trust auth,
    listening on 127.0.0.1 only. ``stop``/``start`` are the outage; ``close`` removes everything."""

    def __init__(self) -> None:
        self.bin = Path(PG_BINS[-1]).parent
        self.base = Path(tempfile.mkdtemp(prefix="skipweb-outage-pg-"))
        shutil.chown(self.base, "postgres", "postgres")
        self.data = self.base / "data"
        self.port = _free_port()
        self.running = False

    def _as_postgres(self, *cmd: str, timeout: float = 120) -> None:
        out = subprocess.run(
            ["runuser", "-u", "postgres", "--", *cmd],
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            log = (self.base / "server.log").read_text(errors="replace")[-3000:] if self.running else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stdout}{out.stderr}{log}")

    def init(self) -> None:
        self._as_postgres(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N"
        )
        self.start()

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.running = True  # from here on, close() must stop it
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "server.log"),
                          "-o", opts, "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"
        )
        self.running = False

    def close(self) -> None:
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str, *params) -> list:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:  # fmt: skip
            cur = conn.execute(sql, params or None)
            return cur.fetchall() if cur.description else []

    def now(self):
        """The server's clock (what the lease columns are written with)."""
        return self._admin("SELECT now()")[0][0]

    def create_database(self, name: str) -> str:
        """A fresh, empty database (make_stack migrates it)."""
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def terminate_backends(self, database: str) -> list[int]:
        """pg_terminate_backend on every client backend of ``database`` except the asking one."""
        rows = self._admin(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            database,
        )
        return [pid for pid, ok in rows if ok]


class PrivateRedis:
    """A redis-server on a free port without persistence, as a child process: ``stop`` loses every queue."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, _free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.folder / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--dir", str(self.folder)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        _until(self.answers, 30, "the private redis-server to answer")

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except Exception:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: redis shuts down (nothing saved: --save "")
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        _until(lambda: not _port_open(self.port), 30, "redis to close its port")

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self):
        import redis

        return redis.Redis.from_url(self.url())


# ---- the matrix ----------------------------------------------------------------------------------------
COLUMNS = ("fault", "mode", "fault landed", "final status", "attempts", "lost rows", "duplicated rows",
           "checkpoint step / last step", "checkpoint current", "scenario s")  # fmt: skip


@pytest.fixture(scope="module")
def matrix(request, tmp_path_factory):
    """Rows of the outage matrix; printed as a markdown table (and written to a file) at module end."""
    rows: list[dict] = []
    t0, load0 = time.monotonic(), os.getloadavg()[0]
    yield rows
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
        *("| " + " | ".join(str(r.get(c, "")) for c in COLUMNS) + " |" for r in rows),
    ]
    notes = [f"- {r['fault']}: {r['note']}" for r in rows if r.get("note")]
    text = "\n".join([
        f"Outage matrix: {len(rows)} rows in {time.monotonic() - t0:.0f} s; load average "
        f"{load0:.2f} at start, {os.getloadavg()[0]:.2f} at end, {os.cpu_count()} CPUs",
        "", *lines, "", *notes,
    ])  # fmt: skip
    out = tmp_path_factory.getbasetemp() / "outage_matrix.md"
    out.write_text(text + "\n")
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print(f"\n\n{text}\n(written to {out})")


def _checkpoint_step(rec) -> int | None:
    from skipweb.training import checkpoint

    state = checkpoint.load(Path(rec.checkpoint_path))
    return None if state is None else int(state["step"])


def _duplicated(db_url: str, run_id: int) -> int:
    """(key, step) pairs stored more than once for the run (the primary key forbids it; counted anyway)."""
    from sqlalchemy import func, select

    from db.session import session_scope
    from db.tables import SqlMetric as M

    twice = select(M.key, M.step).where(M.run_id == run_id).group_by(M.key, M.step).having(func.count() > 1)
    with session_scope(db_url, read_only=True) as s:
        return int(s.scalar(select(func.count()).select_from(twice.subquery())))


def _lost(db_url: str, rec) -> int:
    from db.metrics import read_metrics
    from skipweb.facts import Metric

    epochs = rec.spec["epochs"]
    steps = set(_train_loss_steps(db_url, rec.id))
    lost = len(set(range(1, rec.total_steps + 1)) - steps)
    per_epoch = rec.total_steps // epochs
    summary = read_metrics(db_url, [rec.id], keys=[Metric.EPOCH_TRAIN_LOSS])
    return lost + len({per_epoch * e for e in range(1, epochs + 1)} - {int(s) for s in summary["step"]})


def measure(stack, run_id: int, fault: str, mode: str, landed, t0: float, note: str = "") -> dict:
    rec = stack.run(run_id)
    ckpt = _checkpoint_step(rec)
    return {
        "fault": fault,
        "mode": mode,
        "fault landed": f"epoch {landed.epochs_done}/{EPOCHS}, {landed.status}" if landed else "queued",
        "final status": rec.status,
        "attempts": rec.attempts,
        "lost rows": _lost(stack.db_url, rec) if rec.total_steps else "?",
        "duplicated rows": _duplicated(stack.db_url, run_id),
        "checkpoint step / last step": f"{ckpt} / {rec.steps_done} of {rec.total_steps}",
        "checkpoint current": "yes"
        if ckpt is not None and ckpt == rec.steps_done == rec.total_steps
        else "NO",
        "scenario s": f"{time.monotonic() - t0:.0f}",
        "note": note,
    }


def assert_goal(row: dict, attempts: int, stack) -> None:
    got = {
        k: row[k] for k in ("final status", "lost rows", "duplicated rows", "checkpoint current", "attempts")
    }
    want = {"final status": "succeeded", "lost rows": 0, "duplicated rows": 0, "checkpoint current": "yes",
            "attempts": attempts}  # fmt: skip
    assert got == want, f"{row['fault']}: {got} != {want}\n{stack.dump_logs()}"


# ---- helpers on a stack --------------------------------------------------------------------------------------
def _submit_long(stack, seeds=(0,)) -> list[int]:
    return stack.submit(["mlp"], [4], list(seeds), **LONG)


def _first_epoch(stack, run_id: int):
    """Wait for the event every fault is triggered on: the run has a checkpoint (an epoch done)."""
    stack.wait(lambda: stack.run(run_id).epochs_done >= 1, WAIT_S, f"run {run_id}'s first epoch", every=0.1)


def _mid_run(rec) -> None:
    assert rec.status == "running" and rec.epochs_done < EPOCHS, (
        f"the fault missed the run ({rec.status}, epoch {rec.epochs_done}/{EPOCHS}); make it longer"
    )
    assert rec.attempts == 1, f"the fault landed on attempt {rec.attempts}"


def _owner(stack, run_id: int) -> int:
    """Index (in stack.procs) of the worker holding the run's lease: lease_owner is host:pid."""
    owner = stack.run(run_id).lease_owner
    pid = int(owner.split(":")[1])
    return next(i for i, p in enumerate(stack.procs) if p.pid == pid)


def _snapshot(stack, run_id: int) -> tuple:
    """Everything a stale worker could write: the run row, its metrics and probe steps, the checkpoint."""
    from sqlalchemy import select

    from db.session import session_scope
    from db.tables import SqlMetric, SqlProbeStep

    rec = stack.run(run_id)
    path = Path(rec.checkpoint_path)
    with session_scope(stack.db_url, read_only=True) as s:
        metrics = s.execute(select(SqlMetric).where(SqlMetric.run_id == run_id).order_by(SqlMetric.key,
                                                                                          SqlMetric.step)).scalars()  # fmt: skip
        metrics = [(m.key, m.step, m.value, m.wall) for m in metrics]
        probes = s.execute(
            select(SqlProbeStep).where(SqlProbeStep.run_id == run_id).order_by(SqlProbeStep.step)
        )
        probes = [(p.step, p.grad_norm, p.weight_norm) for p in probes.scalars()]
    ckpt = path / CHECKPOINT_NAME
    row = (
        rec.status,
        rec.attempts,
        rec.steps_done,
        rec.epochs_done,
        rec.finished_at,
        rec.lease_owner,
        rec.reason,
    )
    return row, metrics, probes, hashlib.sha256(ckpt.read_bytes()).hexdigest(), ckpt.stat().st_mtime_ns


PG_MODE = "PostgreSQL + Redis (private)"


# ---- 1. worker SIGKILL ------------------------------------------------------------------------------------------
def test_worker_sigkill_mid_run(make_stack, pg, redis_server, matrix):
    t0 = time.monotonic()
    stack = make_stack(pg.create_database("sigkill"), redis_server.url())
    [run_id] = _submit_long(stack)
    stack.start_worker(), stack.start_worker()  # one trains; the other idles until the run is requeued
    _first_epoch(stack, run_id)
    victim = _owner(stack, run_id)
    stack.kill(stack.procs[victim])
    landed = stack.run(run_id)
    _mid_run(landed)
    [rec] = stack.wait_final([run_id], WAIT_S)
    other = 1 - victim
    resumed = "resumed from" in stack.log_text(other)
    row = measure(stack, run_id, "worker SIGKILL", PG_MODE, landed, t0,
                  note=f"the other worker {'resumed from the checkpoint' if resumed else 'did NOT resume'}")  # fmt: skip
    matrix.append(row)
    assert_goal(row, 2, stack)  # the killed attempt counts
    assert resumed, stack.dump_logs()


# ---- 2. worker SIGSTOP past its lease, SIGCONT after the other worker finished the run ----------------------------
def test_worker_sigstop_past_lease_then_sigcont(make_stack, pg, redis_server, matrix):
    t0 = time.monotonic()
    stack = make_stack(pg.create_database("sigstop"), redis_server.url())
    [run_id] = _submit_long(stack)
    stack.start_worker(), stack.start_worker()
    _first_epoch(stack, run_id)
    victim = _owner(stack, run_id)
    frozen = stack.procs[victim]
    os.killpg(frozen.pid, signal.SIGSTOP)
    try:
        landed = stack.run(run_id)
        _mid_run(landed)
        t_stop = time.monotonic()
        # the fault lasts until its event: the other worker's sweep requeued the run once the 6 s lease ran
        # out, and that worker claimed it, resumed it and finished it
        [done] = stack.wait_final([run_id], WAIT_S)
        held = time.monotonic() - t_stop
        before = _snapshot(stack, run_id)
    finally:
        os.killpg(frozen.pid, signal.SIGCONT)
    # the frozen worker wakes up mid-epoch, learns it lost the lease and stops without writing
    stack.wait(lambda: f"run {run_id}: lost lease" in stack.log_text(victim), 60,
               "the resumed worker to give the run up")  # fmt: skip
    after = _snapshot(stack, run_id)
    changed = [name for name, a, b in zip(("run row", "metrics", "probes", "checkpoint", "checkpoint mtime"),
                                          before, after, strict=True) if a != b]  # fmt: skip
    row = measure(stack, run_id, "worker SIGSTOP past its lease, then SIGCONT", PG_MODE, landed, t0,
                  note=f"frozen {held:.0f} s (lease 6 s) until the other worker had finished the run; after "
                  f"SIGCONT the stale worker changed: {', '.join(changed) or 'nothing'}")  # fmt: skip
    matrix.append(row)
    assert done.lease_owner is None and f"run {run_id}: succeeded" in stack.log_text(1 - victim)
    assert not changed, f"the stale worker wrote {changed} after SIGCONT\n{stack.dump_logs()}"
    assert not list(Path(done.checkpoint_path).glob("*.tmp")), "a temporary checkpoint file was left behind"
    assert_goal(row, 2, stack)  # the frozen attempt lost its lease: it counts, like a dead worker


# ---- 3. PostgreSQL stopped 30 s ---------------------------------------------------------------------------------
def test_postgres_stopped_30s_mid_run(make_stack, pg, redis_server, matrix):
    t0 = time.monotonic()
    stack = make_stack(pg.create_database("pgstop"), redis_server.url())
    [run_id] = _submit_long(stack)
    stack.start_worker()
    _first_epoch(stack, run_id)
    landed = stack.run(run_id)
    pg.stop("fast")
    try:
        time.sleep(OUTAGE_S)  # the fault
    finally:
        pg.start()
    back = pg.now()
    [rec] = stack.wait_final([run_id], WAIT_S)
    # a run cannot end while its database is down (ending is a write): it was running when PG stopped
    assert rec.finished_at > back, f"the run ended ({rec.finished_at}) before the outage; make it longer"
    log = stack.log_text(0)
    retries = log.count("database unavailable")
    requeued = "lost lease" in log
    row = measure(stack, run_id, f"PostgreSQL stopped {OUTAGE_S:.0f} s", PG_MODE, landed, t0,
                  note=f"{retries} logged write retries; lease {'LOST' if requeued else 'kept'}")  # fmt: skip
    matrix.append(row)
    assert retries, "the worker never noticed the outage"
    assert_goal(row, 1, stack)  # an outage inside the retry budget is waited out in the same attempt


# ---- 4. the worker's PostgreSQL connections terminated ------------------------------------------------------------
def test_postgres_connections_terminated_mid_run(make_stack, pg, redis_server, matrix):
    from db.session import dispose_engine

    t0 = time.monotonic()
    stack = make_stack(pg.create_database("pgterm"), redis_server.url())
    [run_id] = _submit_long(stack)
    stack.start_worker()
    _first_epoch(stack, run_id)
    dispose_engine(stack.db_url)  # this process's pooled connections: what is left is the worker's
    killed = pg.terminate_backends("pgterm")
    assert killed, "no backend of the worker to terminate"
    landed = stack.run(run_id)
    _mid_run(landed)
    [rec] = stack.wait_final([run_id], WAIT_S)
    retries = stack.log_text(0).count("database unavailable")
    row = measure(stack, run_id, "PostgreSQL connections terminated", PG_MODE, landed, t0,
                  note=f"{len(killed)} backend(s) of the worker terminated; {retries} logged retries")  # fmt: skip
    matrix.append(row)
    assert_goal(row, 1, stack)


# ---- 5. Redis stopped 30 s while a run trains and another waits ------------------------------------------------
def test_redis_stopped_30s_with_a_run_training_and_one_queued(make_stack, pg, redis_server, matrix):
    t0 = time.monotonic()
    stack = make_stack(pg.create_database("redisstop"), redis_server.url())
    [training] = _submit_long(stack)
    # published second, it waits in Redis behind the first (FIFO; the worker prefetches nothing more)
    [queued] = stack.submit(["mlp"], [4], [1], **{**LONG, "epochs": 3})
    ids = [training, queued]
    stack.start_worker()
    _first_epoch(stack, training)
    client = redis_server.client()
    waiting = client.llen("cpu")
    redis_server.stop()
    landed = stack.run(training)
    _mid_run(landed)
    assert stack.run(queued).status == "queued" and waiting == 1, (stack.run(queued).status, waiting)
    try:
        time.sleep(OUTAGE_S)  # the fault
    finally:
        redis_server.start()
    recs = stack.wait_final(ids, WAIT_S)
    # its message went with Redis (no persistence); the sweep published it again
    republished = re.search(rf"republished \[[^\]]*\b{queued}\b", stack.log_text(0)) is not None
    rows = [
        measure(stack, training, f"Redis stopped {OUTAGE_S:.0f} s: the training run", PG_MODE, landed, t0),
        measure(stack, queued, f"Redis stopped {OUTAGE_S:.0f} s: the queued run", PG_MODE, None, t0,
                note="its message was lost with Redis; the sweep "
                + ("republished it" if republished else "did NOT republish it")),
    ]  # fmt: skip
    matrix.extend(rows)
    for row in rows:
        assert_goal(row, 1, stack)  # the broker is not the truth: nothing was attempted twice
    assert republished and all(r.status in FINAL for r in recs)


# ---- 6. SQLite locked 40 s (embedded mode), beside the others --------------------------------------------------
def _sqlite_lock_scenario(stack, abort: threading.Event) -> dict:
    def wait(cond, what):
        stack.wait(lambda: abort.is_set() or cond(), WAIT_S, what, every=0.1)
        if abort.is_set():
            raise RuntimeError("aborted: the module is being torn down")

    t0 = time.monotonic()
    # rows and message written here without submit(), which reads this process's settings (another test's)
    [run_id] = stack.submit_unchecked(["mlp"], [4], [0], **LONG)
    stack.start_worker()
    wait(lambda: stack.run(run_id).epochs_done >= 1, f"run {run_id}'s first epoch")
    con = sqlite3.connect(stack.db_url.removeprefix("sqlite:///"), isolation_level=None, timeout=60)
    try:
        con.execute("BEGIN IMMEDIATE")  # the write lock; WAL readers (this test's polls) still read
        landed = stack.run(run_id)
        _mid_run(landed)
        abort.wait(SQLITE_LOCK_S)  # the fault: longer than the workers' 30 s busy timeout
        con.execute("ROLLBACK")
    finally:
        con.close()
    wait(lambda: stack.run(run_id).status in FINAL, f"run {run_id} to finish")
    log = stack.log_text(0)
    retries = log.count("database unavailable")
    requeued = "lost lease" in log
    return measure(stack, run_id, f"SQLite locked {SQLITE_LOCK_S:.0f} s", "embedded (SQLite + filesystem broker)",
                   landed, t0, note=f"{retries} logged write retries; lease {'LOST' if requeued else 'kept'}; ran "
                   "beside the rows above (its own file and broker)")  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def embedded_lane(request, tmp_path_factory):
    """The SQLite scenario shares nothing with the others (its own database file, broker folder and worker),
    so it runs beside them in a thread started with the module: its 40 s lock overlaps their faults.
    ``test_sqlite_locked_40s_mid_run`` collects its row; teardown stops its worker whatever happened."""
    if not any(item.name == "test_sqlite_locked_40s_mid_run" for item in request.session.items):
        yield None
        return
    from db import migrate
    from db.session import dispose_engine

    tmp = tmp_path_factory.mktemp("sqlite_lock")
    stack = Stack(tmp, f"sqlite:///{tmp / 'skipweb.db'}", None)
    migrate.upgrade(stack.db_url)
    abort = threading.Event()
    pool = ThreadPoolExecutor(1, thread_name_prefix="embedded-lane")
    future = pool.submit(_sqlite_lock_scenario, stack, abort)
    try:
        yield stack, future
    finally:
        abort.set()
        pool.shutdown(wait=True)
        stack.stop_all()
        dispose_engine(stack.db_url)


def test_sqlite_locked_40s_mid_run(embedded_lane, matrix):
    stack, future = embedded_lane
    row = future.result(timeout=2 * WAIT_S)
    matrix.append(row)
    assert "database unavailable" in stack.log_text(0), "the worker never noticed the lock"
    assert_goal(row, 1, stack)
