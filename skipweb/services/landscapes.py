"""Loss landscapes as a service: request one for a finished run, compute and store it, execute a job
under its lease, and settle a run's landscape jobs when the run ends.

The job row (db.landscape_jobs) is the truth, as for runs: claimed by an atomic conditional UPDATE,
computed under a lease (skipweb.services.execution), and always ended ``succeeded`` or ``failed`` with a
one-line reason unless the lease was lost, in which case the worker that holds it now records it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from db import landscape_jobs, runs
from db.session import get_engine, session_scope
from skipweb.errors import SpecError, UserError
from skipweb.facts import CHECKPOINT_NAME, FINAL_STATUSES
from skipweb.services import broker
from skipweb.services.execution import Leased, Outcome, execute_leased, worker_id
from skipweb.settings import Settings, get_settings

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """The job's lease went to the sweep (this worker missed heartbeats): someone else computes it now."""


# ---- requests ----------------------------------------------------------------------------------------------
@dataclass
class LandscapeRequest:
    job_id: int
    run_id: int
    warning: str | None = None

    def as_json(self) -> dict:
        return {
            "job_id": self.job_id,
            "run_id": self.run_id,
            "status": "queued",
            **({"warning": self.warning} if self.warning else {}),
        }


def landscape_blocker(record) -> str | None:
    """Why a landscape of this run cannot be computed now (a sentence), or None when it can: it needs the
    final weights, so a finished run with a checkpoint."""
    if record.status == "cancelled" and record.started_at is None:
        return f"run {record.id} was cancelled before it started: it never ran, so it has no weights to slice"
    if record.status not in FINAL_STATUSES:
        return (
            f"run {record.id} is {record.status}: a landscape needs its final weights, once it has finished"
        )
    if not record.checkpoint_path or not (Path(record.checkpoint_path) / CHECKPOINT_NAME).is_file():
        return f"run {record.id} has no checkpoint on this machine (looked in {record.checkpoint_path})"
    return None


def request_landscape(run_id: int, *, db=None, celery=None, **params) -> LandscapeRequest:
    """Queue a loss landscape of a finished run: commit the job row, then publish its id to the run's
    queue. ``params``: ``grid``, ``range_``, ``subset``, ``seed`` (db.landscape_jobs.create_jobs). Raises
    SpecError (one line) when the run is unknown or not ready; a broker that is down only warns, the
    workers' sweep publishes the job later."""
    record = runs.get_run(db, run_id)
    if record is None:
        raise SpecError(f"no run {run_id}")
    if (why := landscape_blocker(record)) is not None:
        raise SpecError(why)
    try:
        job_id = landscape_jobs.create_job(db, run_id, **params)
    except (TypeError, ValueError) as e:
        raise SpecError(f"loss landscape: {e}") from None
    warning = None
    try:
        broker.publish_jobs([(job_id, record)], celery)
    except Exception as exc:
        log.warning("could not publish landscape job %s: %s", job_id, exc)
        warning = f"broker unreachable ({type(exc).__name__}); the job stays queued and is sent when a worker sweeps"
    return LandscapeRequest(job_id, run_id, warning)


# ---- computing -----------------------------------------------------------------------------------------------
def checked_run(db_url: str, run_id: int):
    """The run's record and its checkpoint payload, or UserError naming why a landscape is impossible."""
    from skipweb.training import checkpoint

    record = runs.get_run(db_url, run_id)
    if record is None:
        raise UserError(f"no run {run_id}; see `skipweb status` for run ids")
    if record.status == "cancelled" and record.started_at is None:
        raise UserError(f"run {run_id} was cancelled before it started: it never ran, so it has no weights to slice")
    if record.status not in FINAL_STATUSES:
        raise UserError(f"run {run_id} is {record.status}, not finished; a landscape needs its final weights")
    directory = Path(record.checkpoint_path) if record.checkpoint_path else None
    try:  # a damaged or stale checkpoint: one line, never a landscape of the wrong weights
        state = checkpoint.load_current(directory, record.steps_done, run_id, record.status)
    except checkpoint.CheckpointError as e:
        raise UserError(f"{e}; nothing to slice") from None
    return record, state


def compute_and_store(
    settings,
    run_id: int,
    *,
    grid: int,
    range_: float,
    subset: int | None,
    seed: int,
    device: str = "cpu",
    progress=None,
    checked=None,
    may_write=None,
):
    """Compute the 2-D surface and the interpolation for ``run_id``; store '2d', '1d' (the centre row) and
    'interp' rows. Returns the :class:`skipweb.training.landscape.Landscape`. ``checked``:
    :func:`checked_run`'s result when the caller has it already."""
    from db.landscapes import save_landscape
    from skipweb.spec import RunSpec
    from skipweb.training.landscape import _finite, compute

    record, state = checked or checked_run(settings.db_url, run_id)
    spec = RunSpec.parse(record.spec_json)
    result = compute(
        spec,
        state["model"],
        data_dir=settings.datasets_dir,
        grid=grid,
        range_=range_,
        subset=subset,
        seed=seed,
        device=device,
        progress=progress,
    )
    common = {"grid": grid, "range_": range_, "seed": seed, "subset": subset}
    rows = [[_finite(v) for v in r] for r in result.loss]
    if may_write is not None and not may_write():
        raise LeaseLost(f"run {run_id}: landscape computed but not stored: this worker lost the job's lease")
    with session_scope(settings.db_url) as s:
        save_landscape(s, run_id, "2d", x=result.x, y=result.y, loss=rows, **common)
        save_landscape(s, run_id, "1d", x=result.x, y=None, loss=rows[len(rows) // 2], **common)
        save_landscape(
            s,
            run_id,
            "interp",
            x=[a for a, _ in result.interp],
            y=None,
            loss=[_finite(v) for _, v in result.interp],
            **common,
        )
    return result


def compute_device(spec_device: str) -> str:
    """Where to evaluate the losses: CUDA when the run may use it and this worker has it."""
    import torch

    return "cuda" if spec_device != "cpu" and torch.cuda.is_available() else "cpu"


# ---- a worker's job ------------------------------------------------------------------------------------------
def execute_job(job_id: int, settings: Settings | None = None, owner: str | None = None) -> str:
    """Compute and store one job's landscape if this process can claim it. Returns what happened."""
    return str(execute_job_outcome(job_id, settings, owner))


def execute_job_outcome(job_id: int, settings: Settings | None = None, owner: str | None = None) -> Outcome:
    settings = settings or get_settings()
    engine = get_engine(settings.db_url)
    owner = owner or worker_id()

    def compute(lost: threading.Event) -> tuple[str, str | None]:
        job = landscape_jobs.get_job(engine, job_id)
        record = runs.get_run(engine, job.run_id)

        def progress(_: int) -> None:  # called per loss evaluation
            if lost.is_set():
                raise LeaseLost(f"landscape job {job_id}: lease lost; another worker computes it")

        try:
            result = compute_and_store(
                settings,
                job.run_id,
                grid=job.grid,
                range_=job.range,
                subset=job.subset,
                seed=job.seed,
                device=compute_device(record.spec.get("device", "auto") if record else "cpu"),
                progress=progress,
                may_write=lambda: landscape_jobs.holds_lease(engine, job_id, owner),
            )
        except (LeaseLost, UserError) as exc:  # finish() will not apply after LeaseLost: not ours any more
            log.warning("%s", exc)
            return "failed", str(exc)
        log.info("landscape job %s (run %s) stored; final loss %.4g", job_id, job.run_id, result.final_loss)
        return "succeeded", None

    held = Leased(
        f"landscape job {job_id}",
        claim=lambda: landscape_jobs.claim(engine, job_id, owner) is not None,
        renew=lambda: landscape_jobs.heartbeat(engine, job_id, owner),
        finish=lambda status, reason: landscape_jobs.finish(engine, job_id, status, reason, owner=owner),
    )
    return execute_leased(held, compute, settings.heartbeat_seconds)


def after_run(engine, run_id: int, status: str, celery=None) -> list[int]:
    """A run has ended with ``status``: queue and publish its pending landscape jobs if it succeeded, else
    fail them with the reason. Returns the ids it changed. Never raises: the run is already recorded, and
    the sweep settles any job left pending."""
    try:
        if status != "succeeded":
            return landscape_jobs.fail_pending(
                engine, run_id, landscape_jobs.run_ended_reason(run_id, status)
            )
        ids = landscape_jobs.release_pending(engine, run_id)
        if ids:  # `skipweb train` runs this too; its broker may be down: the sweep publishes them then
            record = runs.get_run(engine, run_id)
            broker.publish_jobs([(j, record) for j in ids], celery)
        return ids
    except Exception:  # a broker hiccup: the jobs stay queued and the sweep publishes them again
        log.exception("landscape jobs of run %s: could not settle or publish", run_id)
        return []
