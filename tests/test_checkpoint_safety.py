"""Checkpoints are data, never code: they load with ``torch.load(weights_only=True)`` (issue 11, door 11)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from skipweb import checkpoint
from skipweb.sinks import Recorder
from skipweb.spec import RunSpec
from skipweb.trainer import Trainer


class Payload:
    """What an attacker with write access to the data directory would plant: a pickle that runs code."""

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))

    def __init__(self, marker: str) -> None:
        self.marker = marker


def test_a_crafted_pickle_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"model": Payload(str(marker))}, tmp_path / checkpoint.CHECKPOINT_NAME)
    with pytest.raises(checkpoint.CheckpointError, match="refusing to load it"):
        checkpoint.load(tmp_path)
    assert not marker.exists()
    # the same file loaded the old way would have run the attacker's code: the test can fail
    torch.load(tmp_path / checkpoint.CHECKPOINT_NAME, weights_only=False)
    assert marker.exists()


def test_a_real_run_checkpoint_loads_safely(tmp_path: Path) -> None:
    """Everything the trainer writes (model, optimizer, schedule, scaler, every RNG) is tensors and plain
    values; test_trainer.py::test_resume_reproduces_uninterrupted_run resumes from such a file exactly."""
    spec = RunSpec(family="resnet", depth=8, dataset="digits", epochs=1, subset=128, device="cpu")
    Trainer(spec, data_dir=tmp_path / "d", checkpoint_dir=tmp_path / "a", sinks=[Recorder()]).run()
    state = checkpoint.load(tmp_path / "a")
    assert state is not None and {"rng", "model"} <= set(state)
    assert isinstance(state["rng"]["numpy"]["keys"], torch.Tensor)
