"""The CUDA paths (bf16 autocast, channels-last, torch.compile, GPU-resident data) through the real trainer.
They skip without a GPU; bench/gpu.sh runs them on one, beside the GPU benchmarks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _train(tmp_path: Path, cuda_graphs: bool = False, **over):
    from skipweb.spec import RunSpec
    from skipweb.training.sinks import Recorder
    from skipweb.training.trainer import Trainer

    spec = RunSpec.parse({"family": "resnet", "depth": 20, "dataset": "digits", "epochs": 2, "batch_size": 64,
                          "probe_every": 5, "device": "cuda", **over})  # fmt: skip
    rec = Recorder()
    trainer = Trainer(spec, data_dir=tmp_path, sinks=[rec], cuda_graphs=cuda_graphs)
    result = trainer.run()
    return trainer, rec, result


@pytest.mark.parametrize("amp, channels_last", [("none", False), ("bf16", True)])
def test_trainer_on_cuda_learns_and_probes(tmp_path: Path, amp: str, channels_last: bool) -> None:
    trainer, rec, result = _train(tmp_path, amp=amp, channels_last=channels_last)
    assert result.status == "succeeded", result.reason
    assert trainer.device.type == "cuda" and rec.info.device.startswith("cuda")
    losses = [p.value for p in rec.metrics if p.key == "train/loss"]
    assert losses and all(math.isfinite(v) for v in losses)
    assert rec.epochs[-1]["epoch/train_error"] < 0.9  # above chance after 2 epochs on digits
    assert rec.probes and all(math.isfinite(g) and g >= 0 for p in rec.probes for g in p.grad_norm)


def test_compiled_run_probes_as_the_eager_path(tmp_path: Path) -> None:
    """A compiled run trains and probes every probe step; its first, eager, gives the eager run's gradient
    norms (later steps differ by the compiled kernels' rounding)."""
    _, eager, _ = _train(tmp_path / "eager", amp="bf16", channels_last=True, epochs=1)
    _, compiled, result = _train(tmp_path / "compiled", compile=True, amp="bf16", channels_last=True, epochs=1)
    assert result.status == "succeeded", result.reason
    assert len(compiled.probes) == len(eager.probes)  # the first eager, the others the compiled probe graph
    assert all(math.isfinite(g) for p in compiled.probes for g in p.grad_norm + p.branch_grad)
    first_e, first_c = eager.probes[0], compiled.probes[0]
    assert first_e.step == first_c.step
    torch.testing.assert_close(torch.tensor(first_c.grad_norm), torch.tensor(first_e.grad_norm), rtol=1e-4, atol=1e-6)


def test_traced_probes_under_cuda_graphs_equal_the_hooks() -> None:
    """The compiled probe step as the trainer runs it on a GPU (bf16, channels-last, CUDA graphs): the block
    probes read from the zero leaves equal the eager hooks' at the same weights, replay after replay."""
    from torch import nn

    from skipweb.models import get_model
    from skipweb.training.probes import BlockProbe

    torch.manual_seed(0)
    model = get_model("resnet", depth=20, num_classes=10, in_channels=3, image_size=32).cuda()
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(64, 3, 32, 32, device="cuda").to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (64,), device="cuda")
    probe = BlockProbe(model)

    def step(traced: bool) -> torch.Tensor:
        probe.arm(traced)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x)
        return nn.functional.cross_entropy(logits.float(), y)

    step(False).backward()
    eager = probe.collect()
    model.zero_grad()
    assert probe.can_trace()
    compiled = torch.compile(step, mode="reduce-overhead", dynamic=False)
    for _ in range(3):
        torch.compiler.cudagraph_mark_step_begin()
        compiled(True).backward()
        traced = probe.collect()
        model.zero_grad()
        torch.testing.assert_close(traced, eager, equal_nan=True, rtol=2e-2, atol=1e-6)  # bf16 kernels differ


def test_cuda_graphs_train_as_the_eager_path(tmp_path: Path) -> None:
    """SKIPWEB_CUDA_GRAPHS: the model's forward and backward replayed as CUDA graphs give the eager run's
    losses (the same kernels; cuDNN's backward sums in its own order), probe steps still probe, and the
    capture's extra passes leave BatchNorm's running statistics as they were."""
    _, eager, _ = _train(tmp_path / "eager", amp="bf16", channels_last=True, epochs=1)
    trainer, graphed, result = _train(tmp_path / "graphs", cuda_graphs=True, amp="bf16", channels_last=True, epochs=1)
    assert result.status == "succeeded", result.reason
    assert trainer._eager_forward is not None  # captured
    losses = [[p.value for p in r.metrics if p.key == "train/loss"] for r in (eager, graphed)]
    assert len(losses[0]) == len(losses[1])
    torch.testing.assert_close(torch.tensor(losses[1][:5]), torch.tensor(losses[0][:5]), rtol=2e-2, atol=1e-3)
    assert len(graphed.probes) == len(eager.probes)
    assert all(math.isfinite(v) for p in graphed.probes for v in p.grad_norm + p.skip_grad)
    val = [r.epochs[-1]["val/error"] for r in (eager, graphed)]  # evaluation uses the running statistics
    assert abs(val[0] - val[1]) < 0.05, val
