"""Celery tasks. Each takes a run id only and re-reads everything from the database."""

from __future__ import annotations

import logging

from celery.signals import worker_ready

from workers.celery_app import TASK_LANDSCAPE, TASK_TRAIN, app

log = logging.getLogger(__name__)


@app.task(name=TASK_TRAIN, acks_late=True, ignore_result=True)
def train_run(run_id: int) -> str:
    from workers.runner import execute

    outcome = execute(int(run_id))
    log.info("run %s: %s", run_id, outcome)
    return outcome


@worker_ready.connect
def _start_sweeper(sender=None, **_) -> None:
    """At start: recover runs of dead workers and lost messages, then keep sweeping in the background."""
    from skipweb.settings import get_settings
    from workers.sweeper import Sweeper

    settings = get_settings()
    Sweeper(app, settings, every=max(5.0, settings.lease_seconds / 4)).start()


@app.task(name=TASK_LANDSCAPE, acks_late=True, ignore_result=True)
def landscape_run(
    run_id: int, grid: int = 11, range_: float = 1.0, subset: int | None = 512, seed: int = 0
) -> str:
    """Compute and store the loss landscape of a finished run (skipweb.cli.landscape.compute_and_store)."""
    from skipweb.cli.landscape import compute_and_store
    from skipweb.settings import get_settings

    result = compute_and_store(get_settings(), int(run_id), grid=int(grid), range_=float(range_),
                               subset=None if subset is None else int(subset), seed=int(seed))
    log.info("run %s: landscape %dx%d stored (final loss %.4g)", run_id, grid, grid, result.final_loss)
    return "stored"
