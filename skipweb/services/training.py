"""Executing one run: claim it, train it under its lease, record how it ended.

The database row is the truth. Claiming is an atomic conditional UPDATE, so a duplicate or redelivered
message finds the run taken and does nothing (skipweb.services.execution). When the row says cancel, or
the lease was lost to a sweep, the trainer stops at its next flush and the worker writes nothing more.
Workers call :func:`execute` for each message; ``skipweb train`` calls it in-process with its progress
bar as an extra sink, so a CLI run is recorded exactly like a submitted one.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
from pathlib import Path

from db import runs
from db.retry import cause, retry
from db.session import get_engine
from skipweb.services import landscapes
from skipweb.services.execution import Leased, Outcome, device_name, execute_leased, worker_id
from skipweb.settings import Settings, get_settings

log = logging.getLogger(__name__)

# Set by a GPU worker started on a machine without CUDA (`skipweb worker --gpus 0` on CI): it subscribes
# exactly as a GPU machine's worker does, and the runs that ask for cuda train on the CPU instead.
CPU_STANDS_IN_FOR_CUDA = False


def execute(run_id: int, settings: Settings | None = None, extra_sinks=(), owner: str | None = None) -> str:
    """Train one run if this process can claim it. Returns what happened (for logs and tests)."""
    return str(execute_run(run_id, settings, extra_sinks, owner))


def execute_run(
    run_id: int, settings: Settings | None = None, extra_sinks=(), owner: str | None = None
) -> Outcome:
    from skipweb.services.sink import DbSink
    from skipweb.spec import RunSpec, SpecError
    from skipweb.training.sinks import Sink
    from skipweb.training.trainer import Trainer

    settings = settings or get_settings()
    engine = get_engine(settings.db_url)
    owner = owner or worker_id()
    def renew() -> bool:
        return runs.heartbeat(engine, run_id, owner) == "ok"

    def finish(status: str, reason: str | None) -> bool:
        def write() -> bool:
            why = reason
            if status == "cancelled":
                why = "cancelled on request" if runs.stop_requested(engine, run_id) else reason
            return runs.finish(engine, run_id, owner, status, why)

        return patiently(write, f"run {run_id}: recording {status}", math.inf)

    def hand_back(reason: str) -> bool:
        # Tried for as long as this worker lives: its heartbeat keeps the lease meanwhile (execute_leased), so
        # however long the outage, the sweep does not count it as a dead worker's attempt. The queued row is
        # published again by the workers' sweep, to the queue it was submitted to.
        return patiently(lambda: runs.hand_back(engine, run_id, owner, f"handed back: {reason}"),
                         f"run {run_id}: handing back", math.inf)  # fmt: skip

    def patiently(fn, what: str, budget: float | None = None) -> bool:
        try:
            return retry(fn, what=what, budget_s=settings.db_retry_seconds if budget is None else budget)
        except Exception as exc:  # still unreachable: the lease expires and the sweep requeues the run
            log.warning("%s failed: %s", what, cause(exc))
            return False

    def train(lost: threading.Event) -> tuple[str, str | None]:
        record = runs.get_run(engine, run_id)
        try:
            spec = RunSpec.parse(record.spec_json)
        except SpecError as e:
            return "failed", f"invalid spec: {e}"

        class Stop(Sink):
            def should_stop(self) -> bool:
                return lost.is_set()

        trainer = Trainer(
            spec,
            device="cpu" if CPU_STANDS_IN_FOR_CUDA and spec.device == "cuda" else None,
            cuda_graphs=settings.cuda_graphs,
            data_dir=settings.datasets_dir,
            checkpoint_dir=Path(record.checkpoint_path),
            sinks=[DbSink(run_id, db=engine, owner=owner, retry_s=settings.db_retry_seconds), Stop(), *extra_sinks],
        )
        trainer.generation = record.attempts  # this claim's: a later claim's checkpoints outrank ours
        result = trainer.run()
        if result.status == "cancelled" and not lost.is_set():
            return "cancelled", "cancelled"
        return result.status, result.reason

    held = Leased(
        f"run {run_id}",
        claim=lambda: patiently(lambda: runs.claim(engine, run_id, owner, host=socket.gethostname(),
                                                   device=device_name()), f"run {run_id}: claiming"),  # fmt: skip
        renew=renew,
        finish=finish,
        hand_back=hand_back,
    )
    outcome = execute_leased(held, train, settings.heartbeat_seconds)
    if outcome.recorded:
        landscapes.after_run(engine, run_id, outcome.status)  # its loss-landscape jobs: queue or fail them
    return outcome
