"""Which workers are connected, and where a run will go: the worker side (announce, renew every heartbeat,
leave) and the sentences the Launch page, the Runs page and ``skipweb status`` show.

A worker counts as connected while it renewed within three heartbeats. Routing itself never asks who is
connected (the queue follows from the device alone, skipweb.facts.queue_for): this only tells people.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import Counter
from collections.abc import Sequence

from db import workers
from db.retry import cause
from skipweb.facts import CPU_WORKER_QUEUES, GPU_WORKER_QUEUES, queue_for
from skipweb.settings import Settings, get_settings

log = logging.getLogger(__name__)
FORGET_AFTER_S = 24 * 3600  # a killed worker's row (it never left) is deleted after a day


def connected_within(settings: Settings) -> float:
    return 3 * max(1, settings.heartbeat_seconds)


def connected(db=None, settings: Settings | None = None) -> list[workers.WorkerRecord]:
    settings = settings or get_settings()
    return workers.connected(db or settings.db_url, connected_within(settings))


class Presence(threading.Thread):
    """Announces this worker process, renews it every heartbeat, and leaves on :meth:`close`. Database
    errors are logged in one line and retried at the next beat; a renewal that finds no row announces again."""

    def __init__(self, name: str, gpu: bool, device: str, settings: Settings | None = None):
        super().__init__(daemon=True, name="presence")
        self.settings = settings or get_settings()
        queues = GPU_WORKER_QUEUES if gpu else CPU_WORKER_QUEUES
        self.fields = dict(host=socket.gethostname(), kind="gpu" if gpu else "cpu", device=device, queues=queues)
        self.name_ = name
        self._stop = threading.Event()

    def run(self) -> None:
        db, failing, announced = self.settings.db_url, False, False
        while not self._stop.is_set():
            try:
                if not (announced and workers.renew(db, self.name_)):
                    workers.announce(db, self.name_, **self.fields)
                    workers.forget_stale(db, FORGET_AFTER_S)
                    announced = True
                if failing:
                    log.warning("presence: the database answers again")
                failing = False
            except Exception as exc:  # an outage: one line, then quiet until it recovers
                if not failing:
                    log.warning("presence: cannot reach the database (%s); retrying every heartbeat", cause(exc))
                failing = True
            self._stop.wait(max(1, self.settings.heartbeat_seconds))

    def close(self) -> None:
        self._stop.set()
        try:
            workers.leave(self.settings.db_url, self.name_)
        except Exception as exc:
            log.warning("presence: could not say goodbye (%s); the row expires by itself", cause(exc))


# ---- what people read --------------------------------------------------------------------------------------
def summary(connected_now: Sequence[workers.WorkerRecord]) -> str:
    """'3 workers connected: 2 on GPUs (2 × NVIDIA H200 on gpu-box) and 1 on a CPU (laptop)'."""
    if not connected_now:
        return "no worker is connected"
    gpu = [w for w in connected_now if w.kind == "gpu"]
    cpu = [w for w in connected_now if w.kind != "gpu"]
    parts = []
    if gpu:
        where = ", ".join(f"{n} × {dev} on {host}" for (dev, host), n in Counter((w.device, w.host) for w in gpu).items())
        parts.append(f"{len(gpu)} on GPUs ({where})")
    if cpu:
        hosts = ", ".join(sorted({w.host for w in cpu}))
        parts.append(f"{len(cpu)} on CPUs ({hosts})")
    n = len(connected_now)
    return f"{n} worker{'s' if n != 1 else ''} connected: " + " and ".join(parts)


def placement(device: str, connected_now: Sequence[workers.WorkerRecord]) -> tuple[bool, str]:
    """(someone takes it now, one sentence) for a run that asks for ``device``."""
    queue = queue_for(device)
    takers = [w for w in connected_now if queue in w.queues]
    gpus = sum(w.kind == "gpu" for w in takers)
    if queue == "gpu":
        if not gpus:
            return False, "waiting for a GPU worker: none connected (start `skipweb worker` on a GPU machine)"
        return True, f"runs on the GPU workers ({gpus} connected)"
    if queue == "cpu":
        if not takers:
            return False, "waiting for a CPU worker: none connected (start `skipweb worker` on a machine without GPUs)"
        return True, f"runs on the CPU workers ({len(takers)} connected)"
    if not takers:
        return False, "waiting for a worker: none connected (start one with `skipweb up` or `skipweb worker`)"
    if gpus and gpus == len(takers):
        return True, f"runs on the GPU workers ({gpus} connected), on their GPUs"
    if gpus:
        return True, (f"runs on whichever of the {len(takers)} connected workers is free: on the GPU "
                      f"({gpus} of them) or on a CPU")  # fmt: skip
    return True, f"runs on the CPU workers ({len(takers)} connected): no GPU worker is connected"


def waiting_reason(device: str | None, connected_now: Sequence[workers.WorkerRecord]) -> str | None:
    """For a queued run: why it waits, when no connected worker consumes its queue (else None)."""
    takes, sentence = placement(device or "auto", connected_now)
    return None if takes else sentence
