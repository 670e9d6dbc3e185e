"""Checkpoints are data, never code: they load with ``torch.load(weights_only=True)`` (issue 11, door 11)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from skipweb.spec import RunSpec
from skipweb.training import checkpoint
from skipweb.training.sinks import Recorder
from skipweb.training.trainer import Trainer


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
    from skipweb.training.sinks import Sink

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
    from skipweb.services.runs import delete

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


# ---- issue 22, items 1 and 2: no lock a frozen writer can hold; a damaged checkpoint is passed over ---------
def test_a_writer_frozen_before_its_rename_never_hides_its_successors_checkpoint(tmp_path: Path) -> None:
    """No file lock: a successor (generation 2) always writes. The stale writer (generation 1) passed its
    fence, froze before its rename and wakes after the successor's last save: its file lands, and load still
    takes the successor's (kept as last.prev.pt by the rename)."""
    assert checkpoint.save(tmp_path, {"step": 34, "generation": 1})
    assert checkpoint.save(tmp_path, {"step": 5100, "generation": 2})  # the successor's last save
    assert checkpoint.save(tmp_path, {"step": 136, "generation": 1})  # the stale writer wakes
    assert checkpoint.load(tmp_path) == {"step": 5100, "generation": 2}
    assert not list(tmp_path.glob("*.tmp"))


def test_a_truncated_checkpoint_falls_back_to_the_previous_one_in_one_line(tmp_path: Path, caplog) -> None:
    for step in (34, 68):
        checkpoint.save(tmp_path, {"step": step, "w": torch.randn(50_000)})
    last = tmp_path / checkpoint.CHECKPOINT_NAME
    with open(last, "r+b") as f:  # `truncate -s 100000 last.pt`
        f.truncate(100_000)
    with caplog.at_level("WARNING", logger="skipweb.training.checkpoint"):
        assert checkpoint.load(tmp_path)["step"] == 34
    [line] = [r.getMessage() for r in caplog.records]
    assert "damaged checkpoint" in line and "using the checkpoint at step 34" in line and "\n" not in line
    (tmp_path / checkpoint.PREVIOUS_NAME).write_bytes(b"garbage")
    assert checkpoint.load(tmp_path) is None  # nothing good left: a run starts over
    assert "no good checkpoint left" in caplog.records[-1].getMessage()


def test_a_resumed_run_survives_a_truncated_checkpoint_and_ends_at_its_last_step(tmp_path: Path) -> None:
    """The newest checkpoint (step 6) truncated: the resumed trainer falls back to step 4, trains the last
    epoch again and writes a checkpoint at its last step."""
    spec = RunSpec(family="mlp", depth=2, dataset="digits", epochs=3, subset=64, batch_size=32, device="cpu")
    ckpt = tmp_path / "ckpt"
    Trainer(spec, data_dir=tmp_path / "d", checkpoint_dir=ckpt, sinks=[Recorder()]).run()
    with open(ckpt / checkpoint.CHECKPOINT_NAME, "r+b") as f:
        f.truncate(1000)
    again = Trainer(spec, data_dir=tmp_path / "d", checkpoint_dir=ckpt, sinks=[Recorder()])
    assert (again.step, again.epoch) == (4, 2)
    result = again.run()
    assert (result.status, result.steps) == ("succeeded", 6)
    assert checkpoint.load(ckpt)["step"] == 6


def test_analysis_refuses_a_checkpoint_older_than_a_succeeded_run(tmp_path: Path) -> None:
    checkpoint.save(tmp_path, {"step": 136})
    with pytest.raises(checkpoint.CheckpointError, match=r"^run 7's checkpoint is at step 136, older than the run \(step 5100\)"):
        checkpoint.load_current(tmp_path, 5100, 7, "succeeded")
    assert checkpoint.load_current(tmp_path, 5100, 7, "cancelled")["step"] == 136  # its last epoch's
    assert checkpoint.load_current(tmp_path, 136, 7, "succeeded")["step"] == 136
    with pytest.raises(checkpoint.CheckpointError, match="has no checkpoint"):
        checkpoint.load_current(tmp_path / "none", 1, 7, "succeeded")


def test_a_landscape_of_a_stale_or_damaged_checkpoint_is_refused_in_one_line(db_url: str, tmp_path: Path) -> None:
    from db import experiments, runs
    from skipweb.errors import UserError
    from skipweb.grid import row
    from skipweb.services.landscapes import checked_run

    spec = RunSpec(family="mlp", depth=4, dataset="digits", device="cpu")
    [run_id] = runs.add_runs(db_url, experiments.create_experiment(db_url, "stale"), [row(spec)], checkpoint_dir=tmp_path)
    assert runs.claim(db_url, run_id, "A") and runs.set_progress(db_url, run_id, 5100, 150)
    assert runs.finish(db_url, run_id, "A", "succeeded")
    ckpt = Path(runs.get_run(db_url, run_id).checkpoint_path)
    checkpoint.save(ckpt, {"step": 136})
    with pytest.raises(UserError, match=r"at step 136, older than the run \(step 5100\)") as err:
        checked_run(db_url, run_id)
    assert "\n" not in str(err.value)
    (ckpt / checkpoint.CHECKPOINT_NAME).write_bytes(b"torn")  # damaged, and nothing to fall back to
    with pytest.raises(UserError, match="has no checkpoint"):
        checked_run(db_url, run_id)
