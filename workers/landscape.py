"""What a worker does with a loss-landscape job id, and what it does for a run's landscapes when the run ends.

The job row (db.landscape_jobs) is the truth, as for runs: claiming is an atomic conditional UPDATE, so a
duplicate or redelivered message finds the job taken and does nothing. Once claimed the job always ends
``succeeded`` or ``failed`` with a one-line reason, whatever the computation raised. While it computes, a
heartbeat thread renews the job's lease; if the process is killed, the sweep (workers.sweeper) requeues
the job once the lease expires. A worker that finds its lease gone stops at the next loss evaluation.
"""

from __future__ import annotations

import logging

from db import landscape_jobs
from db.session import get_engine
from skipweb.settings import Settings, get_settings

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """The job's lease went to the sweep (this worker missed heartbeats): someone else computes it now."""


def compute_device(spec_device: str) -> str:
    """Where to evaluate the losses: CUDA when the run may use it and this worker has it."""
    import torch

    return "cuda" if spec_device != "cpu" and torch.cuda.is_available() else "cpu"


def execute_job(job_id: int, settings: Settings | None = None, owner: str | None = None) -> str:
    """Compute and store one job's landscape if this process can claim it. Returns what happened."""
    from db.runs import get_run
    from skipweb.cli.landscape import compute_and_store
    from skipweb.cli.runs import UserError
    from workers.runner import Heartbeat, worker_id

    settings = settings or get_settings()
    engine = get_engine(settings.db_url)
    owner = owner or worker_id()
    job = landscape_jobs.claim(engine, job_id, owner)
    if job is None:
        return "skipped: not queued (already claimed, finished or unknown)"
    beat = Heartbeat(
        lambda: landscape_jobs.heartbeat(engine, job_id, owner),
        settings.heartbeat_seconds,
        name=f"heartbeat-landscape-{job_id}",
    )

    def progress(_: int) -> None:  # called per loss evaluation
        if beat.stop.is_set():
            raise LeaseLost(f"landscape job {job_id}: lease lost; another worker computes it")

    status, reason = "failed", "interrupted before it finished"
    beat.start()
    try:
        record = get_run(engine, job.run_id)
        device = compute_device(record.spec.get("device", "auto") if record else "cpu")
        result = compute_and_store(
            settings,
            job.run_id,
            grid=job.grid,
            range_=job.range,
            subset=job.subset,
            seed=job.seed,
            device=device,
            progress=progress,
        )
        status, reason = "succeeded", None
        log.info("landscape job %s (run %s) stored; final loss %.4g", job_id, job.run_id, result.final_loss)
    except LeaseLost as exc:  # finish() below will not apply: the job is no longer ours
        log.warning("%s", exc)
        reason = str(exc)
    except Exception as exc:  # no checkpoint, data missing, CUDA error...: a readable reason, not a trace
        log.exception("landscape job %s (run %s) failed", job_id, job.run_id)
        reason = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
    finally:  # also on KeyboardInterrupt/SystemExit: never leave the row running
        beat.close()
        recorded = landscape_jobs.finish(engine, job_id, status, reason, owner=owner)
    if not recorded:  # the sweep took the job back; its new worker records the outcome
        return f"lost lease: {status} not recorded"
    return status + (f": {landscape_jobs.one_line(reason)}" if reason else "")


def after_run(engine, run_id: int, status: str, celery=None) -> list[int]:
    """A run has ended with ``status``: queue and publish its pending landscape jobs if it succeeded, else
    fail them with the reason. Returns the ids it changed. Never raises: the run is already recorded, and
    the sweep settles any job left pending."""
    from db.runs import get_run

    try:
        if status != "succeeded":
            return landscape_jobs.fail_pending(
                engine, run_id, landscape_jobs.run_ended_reason(run_id, status)
            )
        ids = landscape_jobs.release_pending(engine, run_id)
        if ids:  # imported only now: `skipweb train` runs this too and needs no broker
            from workers.celery_app import enqueue_landscapes, queue_of_run

            enqueue_landscapes(ids, queue=queue_of_run(get_run(engine, run_id)), celery=celery)
        return ids
    except Exception:  # a broker hiccup: the jobs stay queued and the sweep publishes them again
        log.exception("landscape jobs of run %s: could not settle or publish", run_id)
        return []
