"""Recovery sweeps, run by every worker at start and then periodically.

1. Runs whose lease expired (their worker died) go back to the queue and resume from their checkpoint;
   past ``max_attempts`` they fail with the reason.
2. Runs that are queued in the database but whose message the broker lost (Redis restarted without
   persistence, the embedded broker's file fetched by a worker that was then killed) are published
   again. Duplicates are harmless: a claim is an atomic UPDATE, so a second message is a no-op.
3. Loss-landscape jobs: running ones whose lease expired (their worker died mid-landscape) are queued
   and published again, or failed past ``max_attempts``; pending ones whose run already ended are queued
   (it succeeded) or failed; and queued ones are published again on the same condition as runs.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from db import runs
from db.session import get_engine
from skipweb.settings import Settings, get_settings

log = logging.getLogger(__name__)


def broker_depth(celery, queue: str) -> int | None:
    """Messages waiting in ``queue`` (None when the broker cannot say).

    A queue the broker does not know holds nothing: Redis deletes an empty list, so a passive declare of
    a drained (or, after a restart, lost) queue answers NOT_FOUND; that is 0, not "cannot say".
    """
    try:
        with celery.connection_for_write() as conn:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
    except Exception as exc:
        if str(getattr(exc, "reply_code", "")) == "404" or "NOT_FOUND" in str(exc):
            return 0
        return None


def sweep(celery, settings: Settings | None = None, republish_after: float = 30.0) -> dict:
    from workers.celery_app import QUEUES, enqueue

    settings = settings or get_settings()
    engine = get_engine(settings.db_url)
    requeued, ended = runs.requeue_expired(engine, settings.lease_seconds, settings.max_attempts)
    republished: list[int] = []
    for queue in QUEUES:  # each run to its own queue: a GPU run must not land on the CPU queue
        ids = [i for i in requeued if queue_of(engine, i) == queue]
        if ids:
            enqueue(ids, queue=queue, celery=celery)
    # Only when every queue is empty can a queued run have lost its message; otherwise wait.
    if all(broker_depth(celery, q) == 0 for q in QUEUES):
        cutoff = datetime.now(UTC) - timedelta(seconds=republish_after)
        for record in runs.list_runs(engine, status="queued", limit=10_000):
            created = record.created_at if record.created_at.tzinfo else record.created_at.replace(tzinfo=UTC)
            if record.id not in requeued and created < cutoff:
                republished.append(record.id)
        for queue in QUEUES:
            ids = [i for i in republished if queue_of(engine, i) == queue]
            if ids:
                enqueue(ids, queue=queue, celery=celery)
    if requeued or ended or republished:
        log.info("sweep: requeued %s, ended %s, republished %s", requeued, ended, republished)
    return {
        "requeued": requeued,
        "ended": ended,
        "republished": republished,
        **sweep_landscapes(celery, engine, settings=settings),
    }


def sweep_landscapes(celery, engine, republish_after: float = 30.0, settings: Settings | None = None) -> dict:
    """Requeue landscape jobs whose worker died (lease older than the settings' ``lease_seconds``) or fail
    them past ``max_attempts``; settle pending jobs of ended runs; publish the requeued and released ones,
    and every queued one older than ``republish_after`` when the broker's queues are empty (its message
    may be lost)."""
    from db import landscape_jobs
    from workers.celery_app import QUEUES, enqueue_landscapes, queue_of_run

    settings = settings or get_settings()
    requeued, lost = landscape_jobs.requeue_expired_jobs(
        engine, settings.lease_seconds, settings.max_attempts
    )
    released, failed = landscape_jobs.settle_pending(engine)
    failed = sorted(lost + failed)
    fresh = set(requeued) | set(released)
    todo = [(j, r) for j, r in landscape_jobs.queued_jobs(engine) if j in fresh]
    if all(broker_depth(celery, q) == 0 for q in QUEUES):
        todo = landscape_jobs.queued_jobs(engine, older_than=republish_after) + todo
    by_queue: dict[str, list[int]] = {}
    for job_id, run_id in dict(todo).items():
        by_queue.setdefault(queue_of_run(runs.get_run(engine, run_id)), []).append(job_id)
    for queue, ids in by_queue.items():
        enqueue_landscapes(ids, queue=queue, celery=celery)
    published = sorted(j for ids in by_queue.values() for j in ids)
    if requeued or released or failed or published:
        log.info(
            "sweep: landscape jobs requeued %s, released %s, failed %s, published %s",
            requeued,
            released,
            failed,
            published,
        )
    return {"landscapes_requeued": requeued, "landscapes_failed": failed, "landscapes_published": published}


def queue_of(engine, run_id: int) -> str:
    record = runs.get_run(engine, run_id)
    device = record.spec.get("device", "auto") if record else "auto"
    return "gpu" if device == "cuda" else "cpu"


class Sweeper(threading.Thread):
    def __init__(self, celery, settings: Settings, every: float):
        super().__init__(daemon=True, name="sweeper")
        self.celery, self.settings, self.every = celery, settings, every

    def run(self) -> None:
        while True:
            try:
                sweep(self.celery, self.settings)
            except Exception:
                log.exception("sweep failed")
            time.sleep(self.every)
