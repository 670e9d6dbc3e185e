"""DbSink: the trainer's numbers go to the database, every write fenced by the worker's lease. It joins the
training side (skipweb.training.sinks) to db, so it lives in the service layer, which may use both."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import Engine

from db.metrics import write_batch
from db.retry import cause, retry, transient
from db.run_queries import stop_requested
from db.runs import holds_lease, set_info, set_progress
from db.session import get_engine
from skipweb.errors import Unavailable
from skipweb.training.sinks import MetricPoint, ProbePoint, RunInfo, RunResult, Sink

T = TypeVar("T")


class DbSink(Sink):
    """Writes one transaction per flush; stops the trainer when the run is cancelled or its lease lost.

    Args:
        run_id: the run being trained.
        db: URL or engine (default: settings). Sessions are opened per call, never held.
        owner: the worker id holding the lease. When given, every write is fenced on it: a worker whose
            lease expired (and whose run may be running elsewhere now) writes nothing and is told to stop.
        cancel_poll_s: ``should_stop`` asks the database at most this often (it is polled every flush).
        retry_s: how long a write retries a database that is unreachable or locked (db.retry) before the
            sink raises skipweb.errors.Unavailable, which hands the run back to the queue.
        clock: monotonic time source, injectable for tests.

    The lease heartbeat is the worker's job (a timer thread), not this sink's: a slow step must not
    stop the heartbeat. Finishing the run (``db.runs.finish``) is the worker's job too, since it also
    has to handle exceptions the trainer never reports.
    """

    def __init__(
        self,
        run_id: int,
        db: str | Engine | None = None,
        owner: str | None = None,
        cancel_poll_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        retry_s: float = 120.0,
    ) -> None:
        self.run_id = run_id
        self.retry_s = retry_s
        self.engine = db if isinstance(db, Engine) else get_engine(db)
        self.owner = owner
        self.cancel_poll_s = cancel_poll_s
        self._clock = clock
        self._last_poll = -float("inf")
        self._stop = False

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return retry(fn, what=f"run {self.run_id}: {what}", budget_s=self.retry_s)
        except Exception as exc:
            if transient(exc):
                raise Unavailable(f"database unreachable for {self.retry_s:.0f} s ({cause(exc)})") from None
            raise

    def on_start(self, info: RunInfo) -> None:
        ok = self._call("recording the model", lambda: set_info(
            self.engine,
            self.run_id,
            params=info.params,
            flops=info.flops,
            device=info.device,
            torch_version=info.torch_version,
            total_steps=info.total_steps,
            probe_layers=info.probe_layers,
            blocks=info.blocks,
            owner=self.owner,
        ))
        self._stop = self._stop or not ok

    def on_flush(self, metrics: list[MetricPoint], probes: list[ProbePoint]) -> None:
        ok = self._call("writing metrics", lambda: write_batch(self.engine, self.run_id, metrics, probes, owner=self.owner))
        self._stop = self._stop or not ok

    def on_epoch(self, epoch: int, step: int, summary: dict[str, float]) -> None:
        self._call("recording progress", lambda: set_progress(self.engine, self.run_id, steps_done=step,
                                                              epochs_done=epoch, owner=self.owner))  # fmt: skip

    def on_checkpoint(self, epoch: int, step: int, path: Path) -> None:
        """Nothing to store: the checkpoint path is the run's server-generated ``checkpoint_path``."""

    def on_end(self, result: RunResult) -> None:
        self._call("recording progress", lambda: set_progress(self.engine, self.run_id, steps_done=result.steps,
                                                              epochs_done=result.epochs_done, owner=self.owner))  # fmt: skip

    def may_write(self) -> bool:
        """Only while this worker holds the run's lease (db.lease): a stale worker's checkpoint must not
        replace the one written by the worker that took the run over."""
        if self.owner is None:
            return True
        held = self._call("checking the lease", lambda: holds_lease(self.engine, self.run_id, self.owner))
        self._stop = self._stop or not held
        return held

    def should_stop(self) -> bool:
        if self._stop:
            return True
        now = self._clock()
        if now - self._last_poll >= self.cancel_poll_s:
            self._last_poll = now
            self._stop = self._call("polling for a cancel", lambda: stop_requested(self.engine, self.run_id, self.owner))
        return self._stop
