"""Checkpoints that resume a run exactly: model, optimizer, schedule, scaler, every RNG, step and spec."""

from __future__ import annotations

import logging
import os
import pickle
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock, Timeout

from skipweb.facts import CHECKPOINT_NAME

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be loaded safely; ``str(err)`` is one line."""


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every RNG's state in plain types and tensors, so that ``torch.load(weights_only=True)`` reads it."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},  # fmt: skip
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "data": generator.get_state(),
    }


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["data"])


# checkpoint directories whose lock another writer held past lock_timeout (see save)
_FROZEN: set[Path] = set()


def save(directory: Path, payload: dict[str, Any], may_write: Callable[[], bool] | None = None,
         lock_timeout: float = 60.0) -> Path | None:
    """Write atomically (temp file + rename) so a worker killed mid-write never leaves a torn checkpoint.

    ``may_write`` fences the write: it is asked under the directory's file lock, just before the rename,
    and a False answer (this worker lost its lease: the run is someone else's now) leaves the checkpoint
    as it is and returns None. A writer that checked and was then stopped still holds the lock, so the new
    holder's later save waits for it and lands last: an older checkpoint can never replace a newer one.
    A holder that outlasts ``lock_timeout`` is frozen (SIGSTOP, a paused VM): this process's later saves to
    that directory try the lock without waiting again, so training is not held up a minute per epoch.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_NAME
    tmp = directory / f"{CHECKPOINT_NAME}.{os.getpid()}.{threading.get_ident()}.tmp"
    torch.save(payload, tmp)
    wait = 0.0 if directory in _FROZEN else lock_timeout
    try:
        with FileLock(directory / f"{CHECKPOINT_NAME}.lock", timeout=wait):
            _FROZEN.discard(directory)
            if may_write is not None and not may_write():
                return None
            os.replace(tmp, path)
    except Timeout:
        _FROZEN.add(directory)
        log.warning("checkpoint %s: another writer holds its lock (waited %.0f s); not written", path, wait)
        return None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load(directory: Path | None) -> dict[str, Any] | None:
    if directory is None or not (directory / CHECKPOINT_NAME).exists():
        return None
    # weights_only=True: a checkpoint is data, never code. Anyone who can write to the data directory could
    # otherwise run code in every worker and in the web app through a crafted pickle.
    try:
        return torch.load(directory / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{directory / CHECKPOINT_NAME} holds more than tensors and plain values (written "
                              "by an older skipweb, or tampered with); refusing to load it") from None
