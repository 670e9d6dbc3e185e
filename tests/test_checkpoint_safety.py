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


# ---- issue 11, fault 1: a stale worker must not overwrite the checkpoint of the worker that took over -----
def test_a_worker_that_lost_its_lease_does_not_replace_the_checkpoint(db_url: str, tmp_path: Path) -> None:
    """Worker A trains; mid-epoch the sweep gives the run to worker B, which finishes it and writes its
    checkpoint (step 68). A, resumed, reaches its epoch's checkpoint: it must write nothing."""
    from db import experiments, runs
    from skipweb.facts import Metric
    from skipweb.grid import row
    from skipweb.services.sink import DbSink
    from skipweb.sinks import Sink

    spec = RunSpec(family="mlp", depth=4, dataset="digits", epochs=1, subset=256, device="cpu")
    exp = experiments.create_experiment(db_url, "fence")
    [run_id] = runs.add_runs(db_url, exp, [row(spec)], checkpoint_dir=tmp_path)
    ckpt_dir = Path(runs.get_run(db_url, run_id).checkpoint_path)
    assert runs.claim(db_url, run_id, "A")

    class TakeOver(Sink):
        """A is 'stopped' after its epoch's last write, before its checkpoint (the epoch summary is the
        last flush before the save): its lease expires, B claims the run, finishes it and writes."""

        def on_flush(self, metrics, probes) -> None:
            if not any(m.key == Metric.EPOCH_TRAIN_LOSS for m in metrics):
                return
            from sqlalchemy import update

            from db.session import session_scope
            from db.tables import SqlRun

            with session_scope(db_url) as s:  # A's heartbeat is long gone
                s.execute(update(SqlRun).where(SqlRun.id == run_id).values(heartbeat_at=None))
            assert runs.requeue_expired(db_url, lease_seconds=1, max_attempts=5)[0] == [run_id]
            assert runs.claim(db_url, run_id, "B")
            assert checkpoint.save(ckpt_dir, {"step": 68, "by": "B"}, may_write=lambda: runs.holds_lease(db_url, run_id, "B"))

    sink = DbSink(run_id, db=db_url, owner="A")
    Trainer(spec, data_dir=tmp_path / "data", checkpoint_dir=ckpt_dir, sinks=[TakeOver(), sink]).run()
    state = checkpoint.load(ckpt_dir)
    assert state == {"step": 68, "by": "B"}, f"A's stale checkpoint (step {state.get('step')}) replaced B's"
    assert not list(ckpt_dir.glob("*.tmp")), "A's temporary file was left behind"
    assert runs.get_run(db_url, run_id).lease_owner == "B"


def test_a_checkpoint_without_a_fence_is_written(tmp_path: Path) -> None:
    """The fence only stops a writer that lost: a plain save (no lease to hold) still lands."""
    assert checkpoint.save(tmp_path, {"step": 1}) == tmp_path / checkpoint.CHECKPOINT_NAME
    assert checkpoint.save(tmp_path, {"step": 2}, may_write=lambda: False) is None
    assert checkpoint.load(tmp_path) == {"step": 1}


# ---- issue 11, door 12: deleting a run or an experiment removes its checkpoints ----------------------------
def test_delete_removes_checkpoints_and_says_so(db_url: str, tmp_path: Path) -> None:
    from db import experiments, runs
    from skipweb.grid import row
    from skipweb.services.launch import delete

    root = tmp_path / "checkpoints"
    specs = [RunSpec(family="mlp", depth=4, dataset="digits", seed=s) for s in (0, 1, 2)]
    exp = experiments.create_experiment(db_url, "doomed")
    a, b, c = runs.add_runs(db_url, exp, [row(s) for s in specs], checkpoint_dir=root)
    dirs = {i: Path(runs.get_run(db_url, i).checkpoint_path) for i in (a, b, c)}
    for d in dirs.values():
        checkpoint.save(d, {"step": 1})
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert delete(run_id=a, db=db_url, checkpoint_root=root) == f"run {a} deleted with its metrics and 1 checkpoint folder"
    assert not dirs[a].exists() and dirs[b].exists()
    assert delete(experiment_id=exp, db=db_url, checkpoint_root=root) == (
        f"experiment {exp} deleted with its metrics and 2 checkpoint folders"
    )
    assert not dirs[b].exists() and not dirs[c].exists() and outside.exists() and root.exists()
    assert runs.get_run(db_url, b) is None


def test_a_frozen_lock_holder_costs_one_wait_not_one_per_save(tmp_path: Path) -> None:
    """A writer frozen while holding the lock (SIGSTOP) makes the next save wait lock_timeout once; later
    saves try without waiting (not a minute per epoch), and the first free lock writes again."""
    import time

    from filelock import FileLock

    from skipweb import checkpoint

    held = FileLock(tmp_path / f"{checkpoint.CHECKPOINT_NAME}.lock")
    held.acquire()
    try:
        assert checkpoint.save(tmp_path, {"step": 1}, lock_timeout=0.2) is None
        t = time.monotonic()
        assert checkpoint.save(tmp_path, {"step": 2}, lock_timeout=600) is None
        assert time.monotonic() - t < 60  # it did not wait its 600 s again
    finally:
        held.release()
    assert checkpoint.save(tmp_path, {"step": 3}) == tmp_path / checkpoint.CHECKPOINT_NAME
    assert checkpoint.load(tmp_path)["step"] == 3
