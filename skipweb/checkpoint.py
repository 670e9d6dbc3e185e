"""Checkpoints that resume a run exactly: model, optimizer, schedule, scaler, every RNG, step and spec."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_NAME = "last.pt"


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "data": generator.get_state(),
    }


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
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
    # weights_only=False: the payload holds RNG states (numpy tuples); we only load files we wrote ourselves.
    return torch.load(directory / CHECKPOINT_NAME, map_location="cpu", weights_only=False)
