"""Per-block probes: the skip/branch split of dL/dx is exact, activation statistics are what they say,
and the trainer records them (one sync per probe step) through to the database."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from db.blocks import read_blocks
from skipweb.data import load_dataset
from skipweb.models import get_model
from skipweb.models._common import Fork
from skipweb.services.sink import DbSink
from skipweb.spec import RunSpec
from skipweb.training.probes import BLOCK_STATS, BlockProbe
from skipweb.training.sinks import Recorder
from skipweb.training.trainer import Trainer

CASES = {  # name: (family, depth, options, input shape)
    "resnet-basic": ("resnet", 20, {}, (8, 3, 16, 16)),
    "resnet-preact-B": ("resnet", 20, {"block": "preact", "shortcut": "B"}, (8, 3, 16, 16)),
    "resnet-bottleneck": ("resnet", 29, {"block": "bottleneck"}, (8, 3, 16, 16)),
    "plain": ("plain", 20, {}, (8, 3, 16, 16)),
    "highway": ("highway", 20, {}, (8, 3, 16, 16)),
    "densenet": ("densenet", 22, {}, (8, 3, 16, 16)),
    "unet-concat": ("unet", 2, {"width": 8}, (4, 3, 16, 16)),
    "unet-add": ("unet", 2, {"width": 8, "skip": "add"}, (4, 3, 16, 16)),
    "mlp": ("mlp", 6, {"width": 64}, (8, 3, 8, 8)),
}


def _probed_backward(name: str):
    family, depth, opts, shape = CASES[name]
    torch.manual_seed(0)
    classes = 2 if family == "unet" else 10
    model = get_model(family, depth=depth, num_classes=classes, in_channels=3, image_size=shape[-1], **opts)
    model.train()
    probe = BlockProbe(model, keep=True)
    totals: dict[int, torch.Tensor] = {}
    inputs: dict[int, torch.Tensor] = {}
    outputs: dict[int, torch.Tensor] = {}

    def capture_input(fork: Fork, args):  # the whole dL/dx: every use of x goes through the fork
        x = args[0]
        inputs[fork.index] = x.detach().clone()
        x.register_hook(lambda g, i=fork.index: totals.__setitem__(i, g.detach().clone()))

    def capture_output(index: int):
        def hook(module, args, out):
            out.register_hook(lambda g: outputs.__setitem__(index, g.detach().clone()))

        return hook

    blocks = {}
    for mod_name, module in model.named_modules():
        if isinstance(module, Fork):
            module.register_forward_pre_hook(capture_input)
            if mod_name.endswith(".fork"):
                blocks[module.index] = model.get_submodule(mod_name.removesuffix(".fork"))
    for i, block in blocks.items():
        block.register_forward_hook(capture_output(i))
    probe.arm()
    x = torch.randn(*shape)
    out = model(x)
    target = torch.randint(0, classes, out.shape[:1] + out.shape[2:])
    nn.functional.cross_entropy(out, target).backward()
    stats = probe.collect()
    return model, probe, stats, totals, inputs, outputs, blocks


@pytest.mark.parametrize("name", list(CASES))
def test_skip_and_branch_sum_to_the_total_gradient(name: str) -> None:
    model, probe, stats, totals, _, _, _ = _probed_backward(name)
    assert stats.shape == (len(BLOCK_STATS), len(probe.layers)) and len(probe.layers) > 0
    for layer in probe.layers:
        i = layer.index
        gs, gb = probe.grads[i]
        assert gb is not None and torch.allclose(stats[1, i], gb.norm(), rtol=1e-4)
        if layer.kind == "none":
            assert gs is None and math.isnan(stats[0, i])
            assert torch.allclose(gb, totals[i], rtol=1e-5, atol=1e-7)  # the branch is everything
        else:
            assert torch.allclose(stats[0, i], gs.norm(), rtol=1e-4)
            assert torch.allclose(gs + gb, totals[i], rtol=1e-4, atol=1e-6), layer
            assert gs.norm() > 0 and gb.norm() > 0
    assert all(f.probe is None for f in probe.forks)  # collect() disarms


def test_identity_skip_carries_the_output_gradient_unchanged() -> None:
    """Pre-activation identity blocks: y = x + F(x), so the skip part of dL/dx IS dL/dy."""
    model, probe, _, _, _, outputs, blocks = _probed_backward("resnet-preact-B")
    checked = 0
    for i, block in blocks.items():
        if block.shortcut is not None and isinstance(block.shortcut, nn.Identity):
            assert torch.equal(probe.grads[i][0], outputs[i])
            checked += 1
    assert checked >= 6


def test_highway_carry_gradient_is_one_minus_gate_times_output_gradient() -> None:
    _, _, stats, _, _, _, blocks = _probed_backward("highway")
    # one block in isolation: y = H*T + x*(1-T), so the carry part of dL/dx is (1-T)*dL/dy
    block = next(b for b in blocks.values() if isinstance(b.carry, nn.Identity))
    x = torch.randn(4, block.conv1.in_channels, 8, 8, requires_grad=True)
    p = BlockProbe(block, keep=True)
    p.arm()
    y = block(x)
    g = torch.randn_like(y)
    y.backward(g)
    s = p.collect()
    t = torch.sigmoid(block.gate(x)).detach()
    assert torch.allclose(p.grads[0][0], (1 - t) * g, rtol=1e-5, atol=1e-7)
    assert torch.allclose(s[5, 0], t.mean())
    assert 0.0 < float(stats[5].min()) < float(stats[5].max()) < 1.0  # gate bias -2: T ≈ 0.12 at init


@pytest.mark.parametrize("name", ["resnet-basic", "mlp", "unet-concat"])
def test_activation_statistics(name: str) -> None:
    _, probe, stats, _, inputs, _, _ = _probed_backward(name)
    for layer in probe.layers:
        x = inputs[layer.index]
        dims = [d for d in range(x.ndim) if d != 1]
        assert torch.allclose(stats[2, layer.index], x.mean(), atol=1e-6)
        assert torch.allclose(stats[3, layer.index], x.std(), rtol=1e-5)
        assert float(stats[4, layer.index]) == pytest.approx(float((x.amax(dim=dims) <= 0).float().mean()))


def test_dead_fraction_counts_channels_dead_for_the_whole_batch() -> None:
    block_probe = BlockProbe(nn.Module())
    x = torch.rand(4, 5, 3, 3)
    x[:, 1] = -1.0  # dead for every example
    x[0, 2] = -1.0  # dead for one example only: alive
    block_probe._slots = [[None] * 6]
    block_probe.fork(0, x)
    assert float(block_probe._slots[0][4]) == pytest.approx(1 / 5)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return load_dataset("digits", data_dir=tmp_path_factory.mktemp("data"), seed=0, subset=256)


def test_trainer_records_block_probes_to_the_database(digits, tmp_path, db_url) -> None:
    from db import runs
    from db.experiments import create_experiment
    from skipweb.grid import row

    exp = create_experiment(db_url, "blocks")
    spec = RunSpec.parse(
        dict(family="highway", depth=20, dataset="digits", epochs=1, batch_size=32, probe_every=3, subset=256)
    )
    (run_id,) = runs.add_runs(db_url, exp, [row(spec)], checkpoint_dir=tmp_path / "ckpt")
    assert runs.claim(db_url, run_id, "w")
    rec = Recorder()
    result = Trainer(spec, data_dir=tmp_path, data=digits, sinks=[rec, DbSink(run_id, db_url, "w")]).run()
    assert result.status == "succeeded"
    series = read_blocks(db_url, [run_id])[run_id]
    assert [b.name for b in series.layers] == [b.name for b in rec.info.blocks]
    assert {b.kind for b in series.layers} == {"gate"} and len(series.layers) == 9
    assert series.steps.tolist() == [p.step for p in rec.probes]
    for k in BLOCK_STATS:
        assert series.stats[k].shape == (len(rec.probes), 9)
        np.testing.assert_allclose(series.stats[k], np.array([getattr(p, k) for p in rec.probes]), rtol=1e-6)
    assert np.all(np.isfinite(series.ratio())) and np.all(series.ratio() > 0)
    assert read_blocks(db_url, [run_id + 999])[run_id + 999].layers == []


def test_collect_divides_out_the_loss_scale() -> None:
    """fp16 runs back-propagate a scaled loss; the recorded gradient norms must be the true ones."""
    torch.manual_seed(0)
    model = get_model("resnet", depth=8, num_classes=10, in_channels=1, image_size=8)
    x = torch.randn(4, 1, 8, 8)
    norms = []
    for scale in (1.0, 1024.0):
        probe = BlockProbe(model)
        probe.arm()
        (nn.functional.cross_entropy(model(x), torch.arange(4)) * scale).backward()
        norms.append(probe.collect(torch.tensor(scale)))
        model.zero_grad()
    torch.testing.assert_close(norms[1][:2], norms[0][:2], rtol=1e-4, atol=0)
    torch.testing.assert_close(norms[1][2:], norms[0][2:], equal_nan=True)


@pytest.mark.slow  # torch.compile on the CPU: ~10-20 s a model
@pytest.mark.parametrize("name", ["resnet-basic", "highway", "plain"])
def test_traced_probes_in_a_compiled_step_equal_the_hooks(name: str) -> None:
    """A compiled probe step (zero leaves instead of hooks) records what the eager hooks record: all six rows,
    NaN skip gradients of the no-skip twins, highway gates; once compiled, later steps reuse the graph."""
    family, depth, opts, shape = CASES[name]
    torch.manual_seed(0)
    model = get_model(family, depth=8, num_classes=10, in_channels=3, image_size=8, **opts)
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 10, (8,))
    probe = BlockProbe(model)
    assert not probe.can_trace()  # no shapes before an eager probe step

    def step(traced: bool) -> torch.Tensor:
        probe.arm(traced)
        return nn.functional.cross_entropy(model(x), y)

    step(False).backward()
    eager = probe.collect()
    model.zero_grad()
    assert probe.can_trace()
    compiled = torch.compile(step, dynamic=False)
    for _ in range(2):  # the second call replays: its zero leaves' gradients were reset by collect()
        compiled(True).backward()
        traced = probe.collect()
        model.zero_grad()
        torch.testing.assert_close(traced, eager, equal_nan=True, rtol=1e-4, atol=1e-7)
    assert torch.isnan(traced[0]).all() == (name == "plain")
    assert torch.isnan(traced[5]).all() == (name != "highway")


@pytest.mark.slow  # torch.compile on the CPU (two graphs: the step and the probe step)
def test_compiled_run_traces_its_probe_steps(digits, tmp_path) -> None:
    """In a compiled run, probe steps after the first use the compiled probe graph and record finite block
    statistics at every probe step."""
    spec = RunSpec.parse(dict(family="resnet", depth=8, dataset="digits", epochs=1, batch_size=32, probe_every=2,
                              subset=256, compile=True))  # fmt: skip
    rec = Recorder()
    trainer = Trainer(spec, data_dir=tmp_path, data=digits, sinks=[rec])
    calls = []
    probe_step = trainer.compiled_probe_step
    trainer.compiled_probe_step = lambda x, y: calls.append(len(y)) or probe_step(x, y)
    result = trainer.run()
    assert result.status == "succeeded", result.reason
    full = trainer.steps_per_epoch - (len(digits.train) % 32 != 0)  # full batches (the last may be smaller)
    probes_on_full = len([s for s in range(full) if s % 2 == 0])
    assert len(calls) == probes_on_full - 1  # every full-batch probe step but the first (eager: learns shapes)
    assert len(rec.probes) == len(range(0, trainer.steps_per_epoch, 2))
    for p in rec.probes:
        assert all(math.isfinite(v) and v > 0 for v in p.skip_grad + p.branch_grad), p.step
