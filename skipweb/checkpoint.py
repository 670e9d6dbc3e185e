"""Checkpoints that resume a run exactly: model, optimizer, schedule, scaler, every RNG, step and spec."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skipweb.facts import CHECKPOINT_NAME


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


def save(directory: Path, payload: dict[str, Any]) -> Path:
    """Write atomically (temp file + rename) so a worker killed mid-write never leaves a torn checkpoint."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_NAME
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
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
