"""The one way a worker executes leased work (a run, a landscape job): claim → heartbeat → body → finish.

:func:`execute_leased` claims the row (db.lease); a :class:`Heartbeat` thread renews the lease while the
body runs and sets ``lost`` once a renewal is refused (the sweep took the row back, or a cancel was
asked for), so the body stops writing; then the outcome is recorded, only if the lease is still held.
An exception in the body becomes a one-line reason (details go to the worker log). A database that
stays unreachable past the retry budget (skipweb.errors.Unavailable) hands the row back to the queue
without counting the attempt; the heartbeat goes on until the hand-back or the outcome is written. An interrupt (KeyboardInterrupt, SystemExit: a worker shutting down)
records nothing: the lease expires and the sweep hands the row to another worker, which resumes it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from db.retry import cause, transient
from skipweb.errors import Unavailable, one_line

log = logging.getLogger(__name__)


def worker_id() -> str:
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES")
    return f"{socket.gethostname()}:{os.getpid()}" + (f":gpu{gpu}" if gpu else "")


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.current_device()} ({torch.cuda.get_device_name()})"
    return "cpu (no GPU on this worker)"


class Heartbeat(threading.Thread):
    """Calls ``renew`` every ``interval`` seconds until closed; sets ``stop`` once it answers False (the
    work must end: a cancel was requested, or the lease was lost to a sweep). Keeps renewing after that,
    so a worker winding down is not swept."""

    def __init__(self, renew: Callable[[], bool], interval: float, name: str):
        super().__init__(daemon=True, name=name)
        self.renew, self.interval = renew, interval
        self.stop = threading.Event()
        self._done = threading.Event()

    def run(self) -> None:
        failing = 0
        while not self._done.wait(self.interval):
            try:
                renewed = self.renew()
            except Exception as exc:  # a DB hiccup must not kill the thread; the next beat retries
                failing += 1
                why = cause(exc) if transient(exc) else one_line(exc)
                log.warning("%s: could not renew the lease (%s); next try in %.0f s", self.name, why,
                            self.interval)  # fmt: skip
                continue
            if not renewed:
                self.stop.set()
            if failing:
                what = "lease renewed again" if renewed else "database answered again, but the lease is lost"
                log.warning("%s: %s after %d failed beats", self.name, what, failing)
                failing = 0

    def close(self) -> None:
        self._done.set()


@dataclass(frozen=True)
class Leased:
    """How to hold one row: each callable closes over the database, the row id and the owner."""

    name: str  # "run 3", "landscape job 7": for logs and thread names
    claim: Callable[[], bool]
    renew: Callable[[], bool]
    finish: Callable[[str, str | None], bool]  # (status, reason) → recorded while the lease was held
    hand_back: Callable[[str], bool] | None = None  # (reason) → back to the queue, the attempt not counted


@dataclass(frozen=True)
class Outcome:
    status: str  # the body's status, or "skipped" when the row could not be claimed
    reason: str | None = None
    recorded: bool = False  # False: not claimed, or the lease was lost before the outcome could be written

    def __str__(self) -> str:
        if self.status == "skipped":
            return "skipped: not queued (already claimed, finished or unknown)"
        if self.status == "handed back":
            return f"handed back: {self.reason}" if self.recorded else f"could not hand back: {self.reason}"
        if not self.recorded:
            return f"lost lease: {self.status} not recorded"
        return self.status + (f": {self.reason}" if self.reason else "")


Body = Callable[[threading.Event], tuple[str, str | None]]


def execute_leased(held: Leased, body: Body, interval: float) -> Outcome:
    """Claim, run ``body(lost)`` under a heartbeat, record its ``(status, reason)`` if still ours."""
    if not held.claim():
        return Outcome("skipped")
    beat = Heartbeat(held.renew, interval, name=f"heartbeat {held.name}")
    beat.start()
    # The heartbeat runs until the outcome is written: a worker waiting out an outage to hand its row back
    # (or to finish it) renews its lease as soon as the database answers, so the sweep never mistakes it
    # for a dead one and the outage costs no attempt.
    try:
        try:
            status, reason = body(beat.stop)
        except Unavailable as exc:  # the database stayed away past the retry budget: not the work's fault
            log.warning("%s: %s; handing it back", held.name, exc)
            reason = str(exc)[:200]
            return Outcome("handed back", reason, held.hand_back(reason) if held.hand_back else False)
        except Exception as exc:  # set-up failed, data missing, CUDA error...: a readable reason, not a trace
            log.exception("%s failed", held.name)
            status, reason = "failed", one_line(exc)
        return Outcome(status, reason, held.finish(status, reason))
    finally:
        beat.close()
