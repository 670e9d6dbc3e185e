"""The trainer on real offline data: every metric recorded, exact resume, divergence, cancellation."""

from __future__ import annotations

import math

import pytest
import torch

from skipweb.data import load_dataset
from skipweb.spec import RunSpec, SpecError
from skipweb.training.sinks import Recorder, Sink
from skipweb.training.trainer import Trainer


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return load_dataset("digits", data_dir=tmp_path_factory.mktemp("data"), seed=0)


def spec(**kw) -> RunSpec:
    base = dict(family="resnet", depth=20, dataset="digits", epochs=2, batch_size=64, probe_every=5, lr=0.1,
                warmup_epochs=0.0)
    return RunSpec.parse({**base, **kw})


@pytest.mark.slow
def test_records_every_metric(digits, tmp_path):
    rec = Recorder()
    result = Trainer(spec(), data_dir=tmp_path, data=digits, sinks=[rec]).run()
    assert result.status == "succeeded" and result.epochs_done == 2
    steps_per_epoch = math.ceil(len(digits.train.x) / 64)
    assert rec.info.steps_per_epoch == steps_per_epoch and result.steps == 2 * steps_per_epoch
    keys = {m.key for m in rec.metrics}
    for key in ("train/loss", "train/error", "lr", "samples_per_s", "epoch/train_loss", "epoch/train_error",
                "val/loss", "val/error", "test/loss", "test/error", "time/epoch_s"):
        assert key in keys, key
    # one train loss per optimizer step, numbered 1..N without gaps
    assert [s for s, _ in rec.series("train/loss")] == list(range(1, result.steps + 1))
    # probes at steps 1, 6, 11, ...: one value per probe layer, all finite and positive
    assert [p.step for p in rec.probes] == list(range(1, result.steps + 1, 5))
    n_layers = len(rec.info.probe_layers)
    for p in rec.probes:
        assert len(p.grad_norm) == len(p.weight_norm) == len(p.update_ratio) == n_layers
        assert all(v > 0 and math.isfinite(v) for v in p.grad_norm + p.weight_norm + p.update_ratio)
    # the multistep schedule divides the lr by 10 at half of training
    lrs = dict(rec.series("lr"))
    assert lrs[1] == pytest.approx(0.1) and lrs[result.steps] == pytest.approx(0.001)
    # it learned something: training loss fell
    losses = [v for _, v in rec.series("train/loss")]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5


@pytest.mark.slow
def test_update_ratio_matches_sgd_step(digits, tmp_path):
    """Without momentum or weight decay, ||dW|| = lr * ||g||, so ratio * ||W|| == lr * grad norm."""
    rec = Recorder()
    s = spec(epochs=1, momentum=0.0, weight_decay=0.0, lr=0.05, schedule="constant")
    Trainer(s, data_dir=tmp_path, data=digits, sinks=[rec]).run()
    p = rec.probes[0]
    for g, w, r in zip(p.grad_norm, p.weight_norm, p.update_ratio, strict=True):
        assert r * w == pytest.approx(0.05 * g, rel=1e-3)


class StopAfterEpoch(Sink):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch(self, epoch, step, summary):
        if epoch == self.epoch:
            raise KeyboardInterrupt  # like a killed worker: the checkpoint of this epoch is on disk


@pytest.mark.slow
def test_resume_reproduces_uninterrupted_run(digits, tmp_path):
    s = spec(epochs=3)
    full = Recorder()
    Trainer(s, data_dir=tmp_path, data=digits, checkpoint_dir=tmp_path / "a", sinks=[full]).run()

    with pytest.raises(KeyboardInterrupt):
        Trainer(s, data_dir=tmp_path, data=digits, checkpoint_dir=tmp_path / "b", sinks=[StopAfterEpoch(1)]).run()
    resumed = Recorder()
    result = Trainer(s, data_dir=tmp_path, data=digits, checkpoint_dir=tmp_path / "b", sinks=[resumed]).run()
    assert result.status == "succeeded" and resumed.info.resumed_from_step == full.info.steps_per_epoch
    after = dict(resumed.series("train/loss"))
    expected = {k: v for k, v in full.series("train/loss") if k > full.info.steps_per_epoch}
    assert after == expected  # exactly equal, not approximately
    assert resumed.epochs[-1]["test/loss"] == full.epochs[-1]["test/loss"]
    assert [p.grad_norm for p in resumed.probes] == [p.grad_norm for p in full.probes if p.step > full.info.steps_per_epoch]


@pytest.mark.slow
def test_divergence_keeps_what_was_recorded(digits, tmp_path):
    rec = Recorder()
    s = spec(family="plain", options={"norm": "none"}, lr=10.0, momentum=0.9, epochs=3, probe_every=2)
    result = Trainer(s, data_dir=tmp_path, data=digits, sinks=[rec]).run()
    assert result.status == "diverged"
    assert "loss became" in result.reason and result.steps < 3 * rec.info.steps_per_epoch
    assert rec.series("train/loss") and rec.result is result


class CancelAt(Sink):
    def __init__(self, step: int):
        self.step, self.seen = step, 0

    def on_flush(self, metrics, probes):
        self.seen = max([m.step for m in metrics] + [self.seen])

    def should_stop(self) -> bool:
        return self.seen >= self.step


def test_cancel_stops_at_next_flush(digits, tmp_path):
    rec = Recorder()
    result = Trainer(spec(epochs=3), data_dir=tmp_path, data=digits, sinks=[rec, CancelAt(6)]).run()
    assert result.status == "cancelled" and result.steps == 6
    assert "cancelled at step 6" in result.reason


@pytest.mark.slow
def test_failure_is_reported_not_raised(digits, tmp_path):
    class Boom(Sink):
        def on_epoch(self, epoch, step, summary):
            raise RuntimeError("disk full")

    result = Trainer(spec(), data_dir=tmp_path, data=digits, sinks=[Boom()]).run()
    assert result.status == "failed" and result.reason == "RuntimeError: disk full"


def test_out_of_memory_fails_the_run_in_one_line_naming_its_size(digits, tmp_path, monkeypatch):
    """A run too big for its share of a GPU fails with one line naming the run's size, not the worker's."""
    trainer = Trainer(spec(epochs=1), data_dir=tmp_path, data=digits)

    def too_big(x, y, eager=False):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(trainer, "_forward_loss", too_big)
    monkeypatch.setattr(trainer, "compiled_step", too_big)
    result = trainer.run()
    assert result.status == "failed" and "\n" not in result.reason
    assert result.reason.startswith("out of GPU memory: resnet-20 on digits at batch 64")
    assert "--per-gpu" in result.reason


@pytest.mark.slow
def test_segmentation_unet_on_shapes(tmp_path):
    rec = Recorder()
    s = RunSpec.parse(dict(family="unet", depth=2, dataset="shapes", options={"width": 8}, epochs=1,
                           subset=128, batch_size=32, lr=0.01, optimizer="adamw", probe_every=2))
    result = Trainer(s, data_dir=tmp_path, sinks=[rec]).run()
    assert result.status == "succeeded"
    final = rec.epochs[-1]
    for key in ("test/miou", "test/dice", "test/pixel_acc", "val/miou"):
        assert 0.0 <= final[key] <= 1.0
    assert final["test/error"] == pytest.approx(1 - final["test/pixel_acc"], abs=1e-6)


@pytest.mark.parametrize("bad, fragment", [
    (dict(family="resnet", depth=21), "6n+2"),
    (dict(family="nope"), "choose one of"),
    (dict(dataset="imagenet"), "choose one of"),
    (dict(epochs=-1), "epochs"),
    (dict(family="unet", depth=2), "segmentation"),
    (dict(options={"shortcut": "C"}), "A, B"),
])
def test_bad_specs_are_one_line(bad, fragment):
    with pytest.raises(SpecError) as err:
        spec(**bad)
    msg = str(err.value)
    assert fragment in msg and "\n" not in msg


@pytest.mark.slow
def test_probe_sync_count(digits, tmp_path, monkeypatch):
    """One device->host transfer per flush (probe step or epoch end), never one per layer."""
    calls = {"tolist": 0, "item": 0}
    orig_tolist, orig_item = torch.Tensor.tolist, torch.Tensor.item

    def tolist(self):
        calls["tolist"] += 1
        return orig_tolist(self)

    def item(self):
        calls["item"] += 1
        return orig_item(self)

    rec = Recorder()
    trainer = Trainer(spec(epochs=1), data_dir=tmp_path, data=digits, sinks=[rec])
    monkeypatch.setattr(torch.Tensor, "tolist", tolist)
    monkeypatch.setattr(torch.Tensor, "item", item)
    trainer.run()
    flushes = len(rec.probes) + 1  # one per probe step, plus the end of the epoch
    assert calls["tolist"] == flushes
    assert calls["item"] <= 2 * 4  # evaluation: loss/error/count once per split (val, test)


def test_cuda_graphs_is_a_gpu_setting(digits, tmp_path):
    """SKIPWEB_CUDA_GRAPHS on a machine without a GPU changes nothing: the run trains as written."""
    trainer = Trainer(spec(epochs=1), data_dir=tmp_path, data=digits, cuda_graphs=True)
    assert trainer.cuda_graphs is False
    assert trainer.run().status == "succeeded" and trainer._eager_forward is None


def test_a_model_cuda_graphs_cannot_hold_trains_as_written(digits, tmp_path, monkeypatch, caplog):
    """SKIPWEB_CUDA_GRAPHS and a model whose capture fails: the run trains as written, with the eager path's
    numbers, and the worker's log says why. No GPU here: the trainer is told it has one, and the capture
    fails as torch's does on a model with a host sync in its forward."""

    def refuse(*args, **kwargs):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing")

    monkeypatch.setattr(torch.cuda, "make_graphed_callables", refuse)
    eager, graphed = Recorder(), Recorder()
    Trainer(spec(epochs=1), data_dir=tmp_path / "a", data=digits, sinks=[eager]).run()
    trainer = Trainer(spec(epochs=1), data_dir=tmp_path / "b", data=digits, sinks=[graphed])
    trainer.cuda_graphs = True  # as on a GPU
    with caplog.at_level("WARNING", logger="skipweb.training.trainer"):
        result = trainer.run()
    assert result.status == "succeeded", result.reason
    assert trainer.cuda_graphs is False and trainer._eager_forward is None and "forward" not in vars(trainer.model)
    assert "not replayed as CUDA graphs (RuntimeError: CUDA error: operation not permitted" in caplog.text
    losses = [[p.value for p in r.metrics if p.key == "train/loss"] for r in (eager, graphed)]
    assert losses[0] == losses[1] and losses[0]
