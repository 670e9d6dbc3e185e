"""Recovery sweeps, run by every worker (workers.tasks starts a Sweeper) at start and then periodically.

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

from db import landscape_jobs, runs
from db.retry import cause, transient
from db.session import get_engine
from skipweb.errors import one_line
from skipweb.facts import QUEUES
from skipweb.services import broker
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


def sweep(celery, settings: Settings | None = None, seen: dict[str, dict] | None = None) -> dict:
    """One sweep. ``seen``: the Sweeper's memory of expired leases between sweeps (db.lease): with it, a
    lease is taken only when it was already expired, unchanged, at the previous sweep, so a worker that
    is alive but could not reach the database for longer than its lease keeps its run."""
    settings = settings or get_settings()
    engine = get_engine(settings.db_url)
    seen = seen if seen is not None else {}
    requeued, ended = runs.requeue_expired(engine, settings.lease_seconds, settings.max_attempts,
                                           seen=seen.get("runs"))  # fmt: skip
    # each run to its own queue (broker.route): a GPU run must not land on the CPU queue
    broker.publish_runs([r for i in requeued if (r := runs.get_run(engine, i))], celery)
    republished: list[int] = []
    # Only when every queue is empty can a queued run have lost its message; otherwise wait.
    if all(broker_depth(celery, q) == 0 for q in QUEUES):
        cutoff = datetime.now(UTC) - timedelta(seconds=settings.republish_seconds)
        lost = [
            r
            for r in runs.list_runs(engine, status="queued", limit=10_000)
            if r.id not in requeued and _aware(r.created_at) < cutoff
        ]
        republished = broker.publish_runs(lost, celery)
    if requeued or ended or republished:
        log.info("sweep: requeued %s, ended %s, republished %s", requeued, ended, republished)
    return {
        "requeued": requeued,
        "ended": ended,
        "republished": republished,
        **sweep_landscapes(celery, engine, settings=settings, seen=seen.get("landscapes")),
    }


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def sweep_landscapes(celery, engine, settings: Settings | None = None, seen: dict | None = None) -> dict:
    """Requeue landscape jobs whose worker died (lease older than the settings' ``lease_seconds``) or fail
    them past ``max_attempts``; settle pending jobs of ended runs; publish the requeued and released ones,
    and every queued one older than the settings' ``republish_seconds`` when the broker's queues are empty (its message
    may be lost)."""
    settings = settings or get_settings()
    requeued, lost = landscape_jobs.requeue_expired_jobs(
        engine, settings.lease_seconds, settings.max_attempts, seen=seen
    )
    released, failed = landscape_jobs.settle_pending(engine)
    failed = sorted(lost + failed)
    fresh = set(requeued) | set(released)
    todo = [(j, r) for j, r in landscape_jobs.queued_jobs(engine) if j in fresh]
    if all(broker_depth(celery, q) == 0 for q in QUEUES):
        todo = landscape_jobs.queued_jobs(engine, older_than=settings.republish_seconds) + todo
    published = broker.publish_jobs([(j, runs.get_run(engine, r)) for j, r in dict(todo).items()], celery)
    if requeued or released or failed or published:
        log.info(
            "sweep: landscape jobs requeued %s, released %s, failed %s, published %s",
            requeued,
            released,
            failed,
            published,
        )
    return {"landscapes_requeued": requeued, "landscapes_failed": failed, "landscapes_published": published}


class Sweeper(threading.Thread):
    """Sweeps every ``every`` seconds, remembering the expired leases it saw: one is taken on its second
    sighting, unchanged (a live worker renews in between, ``every`` being longer than a heartbeat)."""

    def __init__(self, celery, settings: Settings, every: float):
        super().__init__(daemon=True, name="sweeper")
        self.celery, self.settings, self.every = celery, settings, every
        self.seen: dict[str, dict] = {"runs": {}, "landscapes": {}}

    def run(self) -> None:
        failing = 0
        while True:
            try:
                sweep(self.celery, self.settings, self.seen)
            except Exception as exc:  # an outage: one line per try with its cause, not a traceback
                failing += 1
                log.warning("sweep failed (%s); next try in %.0f s", cause(exc) if transient(exc) else one_line(exc),
                            self.every)  # fmt: skip
                log.debug("sweep failed", exc_info=True)
            else:
                if failing:
                    log.warning("sweep: working again after %d failed tries", failing)
                failing = 0
            time.sleep(self.every)
