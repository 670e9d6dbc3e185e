"""The outage matrices' tools (test_outage_matrix.py, test_outage_matrix2.py): the PostgreSQL cluster and the
redis-server they start for themselves, on free ports, to stop, restart and cut (never the shared ones;
conftest's ``pg`` and ``redis_server`` fixtures), the long run each fault lands in, and the measures of a
matrix row: lost and duplicated metric rows, the checkpoint's step against the run's last step."""

from __future__ import annotations

import glob
import hashlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from skipweb.facts import CHECKPOINT_NAME
from tests.worker_stack import _train_loss_steps

# mlp-4 on 320 digits: 10 steps an epoch, 20 epochs (about 5 s in a worker on a busy core). A fault lands
# right after the first epoch, with 19 epochs to go: the few calls between the event and the fault cannot
# outlast them however loaded the machine is (both slow down alike); each test asserts it landed mid-run.
EPOCHS = 20
LONG = dict(dataset="digits", epochs=EPOCHS, subset=320, batch_size=32, probe_every=10)
WAIT_S = 600.0  # bounds a failure only; a passing wait ends on its event (a busy machine can be 8x slower)

PG_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
PG_MODE = "PostgreSQL + Redis (private)"


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


# ---- a row's measures ------------------------------------------------------------------------------------
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
