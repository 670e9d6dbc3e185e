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

from skipweb.errors import one_line
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


PREVIOUS_NAME = "last.prev.pt"  # the checkpoint before the newest: the fallback when the newest is damaged


def save(directory: Path, payload: dict[str, Any], may_write: Callable[[], bool] | None = None) -> Path | None:
    """Write atomically (temp file + rename), keeping the previous checkpoint as ``last.prev.pt``.

    No lock: a writer frozen at any instant (SIGSTOP, a paused VM) holds nothing its successor needs, so
    the successor always writes. ``may_write`` fences the write: asked just before the renames, a False
    answer (this worker lost its lease: the run is someone else's now) leaves the checkpoint as it is and
    returns None. A writer that passed the fence and was frozen before its rename can still land one stale
    file when it wakes; the payload's ``generation`` (the lease's: a successor's is higher) and ``step``
    decide which file :func:`load` takes, so that stale file never hides the successor's newer one, which
    its rename only moved to ``last.prev.pt``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path, prev = directory / CHECKPOINT_NAME, directory / PREVIOUS_NAME
    tmp = directory / f"{CHECKPOINT_NAME}.{os.getpid()}.{threading.get_ident()}.tmp"
    link = directory / f"{PREVIOUS_NAME}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        torch.save(payload, tmp)
        if may_write is not None and not may_write():
            return None
        if path.exists():  # the newest becomes the previous one, and last.pt never disappears in between
            link.unlink(missing_ok=True)
            os.link(path, link)
            os.replace(link, prev)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        link.unlink(missing_ok=True)
    return path


def _read(file: Path) -> dict[str, Any]:
    # weights_only=True: a checkpoint is data, never code. Anyone who can write to the data directory could
    # otherwise run code in every worker and in the web app through a crafted pickle.
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" not in str(e):  # garbled bytes, not a pickle naming code: damaged
            raise
        raise CheckpointError(f"{file} holds more than tensors and plain values (written by an older "
                              "skipweb, or tampered with); refusing to load it") from None  # fmt: skip
    if not isinstance(state, dict) or "step" not in state:
        raise ValueError("not a skipweb checkpoint (no step)")
    return state


def _rank(state: dict[str, Any]) -> tuple[int, int]:
    return int(state.get("generation", 0)), int(state["step"])


def load(directory: Path | None) -> dict[str, Any] | None:
    """The newest good checkpoint in ``directory`` (None when there is none).

    Each file is verified by loading it; a damaged one (a truncated write, a full disk) is passed over with
    one log line naming what is used instead: the previous checkpoint, or nothing (a run starts over). Of two
    good files the one with the higher (generation, step) wins: see :func:`save`. A tampered file (a pickle
    that is more than data) raises :class:`CheckpointError` rather than being passed over quietly.
    """
    if directory is None:
        return None
    best: dict[str, Any] | None = None
    damaged: list[str] = []
    for file in (directory / CHECKPOINT_NAME, directory / PREVIOUS_NAME):
        if not file.exists():
            continue
        try:
            state = _read(file)
        except CheckpointError:
            raise
        except Exception as e:  # torch's zip reader on a truncated file: RuntimeError, EOFError, ...
            damaged.append(f"{file} ({one_line(e, 120)})")
            continue
        if best is None or _rank(state) > _rank(best):
            best = state
    if damaged:
        instead = f"using the checkpoint at step {best['step']}" if best else "no good checkpoint left (a run starts over)"
        log.warning("damaged checkpoint %s; %s", "; ".join(damaged), instead)
    return best


def load_current(directory: Path | None, steps_done: int, run_id: int, status: str) -> dict[str, Any]:
    """The run's checkpoint for analysis (landscapes, predictions); :class:`CheckpointError` in one line when
    there is none, or when a succeeded run's checkpoint is older than its last step (its weights are not the
    final ones). A failed or cancelled run's checkpoint is its last epoch's, older than its last step."""
    state = load(directory)
    if state is None:
        raise CheckpointError(f"run {run_id} has no checkpoint (looked in {directory})")
    if status == "succeeded" and int(state["step"]) < steps_done:
        raise CheckpointError(f"run {run_id}'s checkpoint is at step {state['step']}, older than the run "
                              f"(step {steps_done}); its weights are not the final ones")  # fmt: skip
    return state
