"""Celery tasks. Each takes one id (a run's, or a landscape job's) and re-reads everything from the
database."""

from __future__ import annotations

import logging

from celery.signals import worker_ready, worker_shutdown

from skipweb.facts import TASK_LANDSCAPE, TASK_TRAIN
from skipweb.services.broker import app

log = logging.getLogger(__name__)


@app.task(name=TASK_TRAIN, acks_late=True, ignore_result=True)
def train_run(run_id: int) -> str:
    from skipweb.services.training import execute

    outcome = execute(int(run_id))
    log.info("run %s: %s", run_id, outcome)
    return outcome


@worker_ready.connect
def _start_sweeper(sender=None, **_) -> None:
    """At start: recover runs of dead workers and lost messages, then keep sweeping in the background."""
    from skipweb.services.recovery import Sweeper
    from skipweb.settings import get_settings

    settings = get_settings()
    Sweeper(app, settings, every=max(5.0, settings.lease_seconds / 4)).start()
    _announce(getattr(sender, "hostname", None) or "skipweb-worker", settings)


_presence = []


def _announce(name: str, settings) -> None:
    """Tell the dashboard and the CLI this worker is here, what it runs on and which queues it takes."""
    import torch

    from skipweb.services.presence import Presence

    gpu = bool(app.conf.get("skipweb_gpu_worker"))
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name()
    else:
        device = "no CUDA here: trains GPU runs on the CPU" if gpu else "cpu"
    presence = Presence(name, gpu=gpu, device=device, settings=settings)
    presence.start()
    _presence.append(presence)


@worker_shutdown.connect
def _leave(**_) -> None:
    for presence in _presence:
        presence.close()


@app.task(name=TASK_LANDSCAPE, acks_late=True, ignore_result=True)
def landscape_job(job_id: int) -> str:
    """Compute and store the loss landscape a ``landscape_jobs`` row asks for."""
    from skipweb.services.landscapes import execute_job

    outcome = execute_job(int(job_id))
    log.info("landscape job %s: %s", job_id, outcome)
    return outcome
