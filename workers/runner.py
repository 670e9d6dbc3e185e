"""What a worker does with one run id: claim it, train it with heartbeats, and write its final status.

The database row is the truth. Claiming is an atomic conditional UPDATE, so a duplicate or redelivered
message finds the run taken and does nothing. A timer thread renews the lease; when the row says
cancel (or the lease was lost to a sweep) the trainer stops at its next flush.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from db import runs
from db.session import get_engine
from skipweb.settings import Settings, get_settings

log = logging.getLogger(__name__)


def worker_id() -> str:
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES")
    return f"{socket.gethostname()}:{os.getpid()}" + (f":gpu{gpu}" if gpu else "")


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.current_device()} ({torch.cuda.get_device_name()})"
    return "cpu (no GPU on this worker)"


class Heartbeat(threading.Thread):
    """Calls ``renew`` every ``interval`` seconds until closed; sets ``stop`` once it answers False (the
    work must end: a cancel was requested, or the lease was lost to a sweep). Keeps renewing after that,
    so a worker winding down is not swept. For runs and for loss-landscape jobs (workers.landscape)."""

    def __init__(self, renew: Callable[[], bool], interval: float, name: str):
        super().__init__(daemon=True, name=name)
        self.renew, self.interval = renew, interval
        self.stop = threading.Event()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            try:
                if not self.renew():
                    self.stop.set()
            except Exception:  # a DB hiccup must not kill the thread; the next beat retries
                log.exception("%s failed", self.name)

    def close(self) -> None:
        self._done.set()


def execute(run_id: int, settings: Settings | None = None, extra_sinks=(), owner: str | None = None) -> str:
    """Train one run if this process can claim it. Returns what happened (for logs and tests).

    Workers call it for each message; ``skipweb train`` calls it in-process with its progress bar as an
    extra sink, so a CLI run is recorded exactly like a submitted one.
    """
    from db.sink import DbSink
    from skipweb.sinks import Sink
    from skipweb.spec import RunSpec, SpecError
    from skipweb.trainer import Trainer
    from workers.landscape import after_run

    settings = settings or get_settings()
    engine = get_engine(settings.db_url)
    owner = owner or worker_id()
    if not runs.claim(engine, run_id, owner, host=socket.gethostname(), device=device_name()):
        return "skipped: not queued (already claimed, finished or unknown)"
    record = runs.get_run(engine, run_id)
    try:
        spec = RunSpec.parse(record.spec_json)
    except SpecError as e:
        runs.mark_bad_spec(engine, run_id, str(e))
        after_run(engine, run_id, "failed")
        return f"failed: invalid spec: {e}"

    beat = Heartbeat(
        lambda: runs.heartbeat(engine, run_id, owner) == "ok",
        settings.heartbeat_seconds,
        name=f"heartbeat-run-{run_id}",
    )

    class Cancel(Sink):
        def should_stop(self) -> bool:
            return beat.stop.is_set()

    beat.start()
    try:
        trainer = Trainer(
            spec,
            data_dir=settings.datasets_dir,
            checkpoint_dir=Path(record.checkpoint_path),
            sinks=[DbSink(run_id, db=engine, owner=owner), Cancel(), *extra_sinks],
        )
        result = trainer.run()
        status, reason = result.status, result.reason
        if status == "cancelled" and not beat.stop.is_set():
            reason = "cancelled"
    except Exception as exc:  # set-up failed (data missing, CUDA error, ...): a readable reason, not a trace
        log.exception("run %s failed before training", run_id)
        status, reason = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        beat.close()
    if status == "cancelled":
        reason = "cancelled on request" if runs.stop_requested(engine, run_id) else reason
    if not runs.finish(engine, run_id, owner, status, reason):
        return f"lost lease: {status} not recorded"
    after_run(engine, run_id, status)  # its loss-landscape jobs: queue them, or fail them
    return f"{status}" + (f": {reason}" if reason else "")
