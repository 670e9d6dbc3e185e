"""The broker: the Celery app configured from the settings object, publishing, and the one routing rule.

Brokers:
- embedded (default, no server): kombu's ``filesystem`` transport in ``<data_dir>/broker``, with message
  names that keep it first in, first out (skipweb.services.fifo_transport). Several
  processes on one machine can publish and consume. Limits: it polls (1 s), has no acknowledgements —
  a message is removed when a worker fetches it, so a worker killed mid-run loses its message. The
  database lease recovers that run (``requeue_expired``); nothing else relies on the broker keeping it.
- team: ``SKIPWEB_BROKER_URL=redis://...`` or ``amqp://...``. Late acks, prefetch 1 and a visibility
  timeout longer than any run. RabbitMQ closes a channel whose unacked delivery outlives
  ``consumer_timeout`` (30 min by default): raise it in rabbitmq.conf (docker-compose does). If it still
  fires, the redelivered id finds the run already claimed and is a no-op, because claims are atomic in
  the database.

Only JSON crosses the broker (pickle from a broker is remote code execution), and only a run id (or,
for a loss landscape, a job id: the job's row in ``landscape_jobs`` holds its parameters).
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from skipweb.facts import QUEUES, TASK_LANDSCAPE, TASK_TRAIN, queue_for
from skipweb.settings import Settings, get_settings

WEEK = 7 * 24 * 3600


def broker_config(settings: Settings) -> tuple[str, dict]:
    if settings.broker_url:
        return settings.broker_url, {"visibility_timeout": WEEK}
    root = (settings.data_dir / "broker").resolve()
    for sub in ("queue", "processed", "control"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    # a host in the URL, although the transport has none: without one kombu warns "No hostname was supplied"
    # each time it describes the connection (twice per worker start)
    return "filesystem://localhost/", {
        "data_folder_in": str(root / "queue"),
        "data_folder_out": str(root / "queue"),
        # Keep fetched messages on the same file system: the move that claims a message is then an atomic
        # rename, so two workers can never both take one (a move into /tmp across devices is a copy).
        "store_processed": True,
        "processed_folder": str(root / "processed"),
        "control_folder": str(root / "control"),
    }


def make_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    url, transport_options = broker_config(settings)
    # the task bodies live in the entry point workers.tasks; Celery imports it by name in a worker process
    app = Celery("skipweb", broker=url, include=["workers.tasks"])
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport_options,
        broker_transport=None if settings.broker_url else "skipweb.services.fifo_transport:Transport",
        broker_connection_retry_on_startup=True,
        task_queues=[Queue(q, routing_key=q) for q in QUEUES],
        task_default_queue="any",
        worker_hijack_root_logger=False,
        worker_send_task_events=True,  # Flower
        task_send_sent_event=True,
    )
    return app


app = make_app()


def enqueue(run_ids: list[int], queue: str = "any", celery: Celery | None = None) -> None:
    """Publish run ids to ``queue``. Call only after the rows are committed: a worker may pick one up at once.
    Services publish through :func:`publish_runs`, which asks :func:`route`; this is for tests and tools."""
    _publish(TASK_TRAIN, run_ids, queue, celery)


def enqueue_landscapes(job_ids: list[int], queue: str = "any", celery: Celery | None = None) -> None:
    """Publish loss-landscape job ids (db.landscape_jobs); as :func:`enqueue`, only once committed."""
    _publish(TASK_LANDSCAPE, job_ids, queue, celery)


def _publish(task: str, ids: list[int], queue: str, celery: Celery | None) -> None:
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; choose one of: {', '.join(QUEUES)}")
    celery = celery or app
    with celery.producer_or_acquire() as producer:
        for i in ids:
            celery.send_task(task, args=[int(i)], queue=queue, routing_key=queue, producer=producer)


def route(record) -> str:
    """The queue of a run (a RunRecord, a RunSpec or a spec dict), and of work on its weights (a landscape):
    decided by the device it asks for alone (skipweb.facts.queue_for), at the first publish and at every
    republish alike. ``auto`` goes to ``any``, which GPU and CPU workers both consume, so it runs wherever
    a worker is free and trains on the GPU when it lands on one; ``cuda`` waits on ``gpu`` (GPU workers
    only); ``cpu`` on ``cpu`` (CPU workers only)."""
    if record is None:
        return queue_for(None)
    spec = getattr(record, "spec", record)
    try:
        device = spec.get("device") if isinstance(spec, dict) else getattr(spec, "device", None)
    except (ValueError, AttributeError):  # a malformed stored spec
        device = None
    return queue_for(device)


def publish_runs(records, celery: Celery | None = None) -> list[int]:
    """Publish each run's id to :func:`route`'s queue. Returns the ids published."""
    return _publish_routed(TASK_TRAIN, [(r.id, r) for r in records], celery)


def publish_specs(ids_and_specs, celery: Celery | None = None) -> list[int]:
    """Publish new runs' ids, each to its spec's queue: ``[(run_id, RunSpec), ...]``."""
    return _publish_routed(TASK_TRAIN, list(ids_and_specs), celery)


def publish_jobs(jobs_and_runs, celery: Celery | None = None) -> list[int]:
    """Publish landscape job ids, each to its run's queue: ``[(job_id, run_record), ...]``."""
    return _publish_routed(TASK_LANDSCAPE, list(jobs_and_runs), celery)


def _publish_routed(task: str, items, celery: Celery | None) -> list[int]:
    by_queue: dict[str, list[int]] = {}
    for i, record in items:
        by_queue.setdefault(route(record), []).append(int(i))
    for queue, ids in by_queue.items():
        _publish(task, ids, queue, celery)
    return sorted(i for ids in by_queue.values() for i in ids)
