"""One CIFAR-shaped epoch of ResNet-56: skipweb's Trainer against a hand-tuned loop of the same network.

The hand loop is written the way the CIFAR-10 speed runs write theirs (airbench, Keller Jordan 2024): the
whole training set resident on the GPU as uint8; normalisation, random crop (pad 4) and horizontal flip done
batch-wise on the GPU with no per-sample Python; channels-last, bf16 autocast, SGD with Nesterov momentum,
``zero_grad(set_to_none=True)``, and no host synchronisation until the epoch ends. It then evaluates on the
validation and test splits, as every trainer epoch does. The Trainer side is a normal run of the same spec
(same model, batch, optimiser; its probes every ``--probe-every`` steps, metric flushes and evaluation).

Both sides train the same ``get_model`` net with the same seed on the same synthetic CIFAR-10-shaped data
(random images: throughput does not depend on content), alternating (a, b, a, b, ...); each rep builds each
side afresh and trains it ``--epochs`` epochs, and only the epochs after the first are timed (the first
warms up: cuDNN's algorithm search and, with ``--compile``, compilation and CUDA-graph recording). With
``--compile`` both sides compile the same way: ``torch.compile(mode="reduce-overhead")`` (CUDA graphs) on a
GPU, the trainer its step's forward, loss and error, the hand loop its model. Reported: samples/s of each
(median over the timed epochs) and the ratio trainer / hand loop (goals on an H200: trainer >= 25,000
samples/s, ratio >= 0.95, issue 21).

    python bench/hand_loop.py --device cuda --reps 2            # eager, bf16, channels-last
    python bench/hand_loop.py --device cuda --reps 1 --compile  # both sides compiled
    python bench/hand_loop.py --device cpu --n 256 --depth 8 --reps 1 --amp none   # dry run
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_overhead import sync, synthetic_cifar  # noqa: E402

from skipweb.spec import RunSpec  # noqa: E402
from skipweb.training.trainer import Trainer  # noqa: E402


def hand_epochs(spec: RunSpec, data, device: torch.device, cuda_graphs: bool = False) -> list[float]:
    """Build, then train and evaluate ``spec.epochs`` epochs, hand-tuned; the wall seconds of each epoch.
    ``cuda_graphs``: the model's forward and backward replayed as CUDA graphs (make_graphed_callables)."""
    torch.manual_seed(spec.seed)
    model = spec.build_model(data.info).to(device)
    fmt = torch.channels_last if spec.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    graphs = spec.compile and device.type == "cuda"
    net = torch.compile(model, mode="reduce-overhead" if graphs else None, dynamic=False) if spec.compile else model
    if cuda_graphs:
        sample = torch.randn(spec.batch_size, 3, 32, 32, device=device).contiguous(memory_format=fmt)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=spec.amp == "bf16", cache_enabled=False):
            torch.cuda.make_graphed_callables(model, (sample,), num_warmup_iters=3, allow_unused_input=True)
    opt = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, nesterov=True,
                          weight_decay=spec.weight_decay, fused=device.type == "cuda" or None)  # fmt: skip
    mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=device).view(1, -1, 1, 1)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if spec.amp == "bf16" else contextlib.nullcontext
    x_all, y_all = data.train.x, data.train.y
    n, b = len(x_all), spec.batch_size
    ar = torch.arange(32, device=device)
    times = []
    for _ in range(spec.epochs):
        sync(device)
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, device=device)
        for i in range(0, n - b + 1, b):  # drop the last partial batch
            idx = perm[i : i + b]
            x = (x_all[idx].float().div_(255) - mean) / std
            x = torch.where(torch.rand(b, 1, 1, 1, device=device) < 0.5, x.flip(3), x)
            padded = F.pad(x, (4, 4, 4, 4))
            dy, dx = torch.randint(0, 9, (2, b, 1), device=device)
            rows, cols = (dy + ar)[:, None, :, None], (dx + ar)[:, None, None, :]
            x = padded[torch.arange(b, device=device)[:, None, None, None], torch.arange(3, device=device)[None, :, None, None],
                       rows, cols].contiguous(memory_format=fmt)  # fmt: skip
            if graphs:
                torch.compiler.cudagraph_mark_step_begin()
            with autocast():
                loss = F.cross_entropy(net(x).float(), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad(), autocast():
            for split in (data.val, data.test):
                wrong = torch.zeros((), device=device)
                for j in range(0, len(split.x), 1024):
                    x = ((split.x[j : j + 1024].float().div_(255) - mean) / std).contiguous(memory_format=fmt)
                    wrong += (model(x).argmax(1) != split.y[j : j + 1024]).sum()
                wrong.item()  # one host sync per split, as the trainer
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def trainer_epochs(spec: RunSpec, data, device: torch.device, cuda_graphs: bool = False) -> list[float]:
    """A normal run of ``spec`` (probes, flushes, evaluation; no checkpoints); each epoch's wall seconds as the
    trainer records them (``time/epoch_s``: training and evaluation, ended by evaluation's host sync)."""
    from skipweb.facts import Metric
    from skipweb.training.sinks import Recorder

    rec = Recorder()
    with tempfile.TemporaryDirectory() as tmp:
        Trainer(spec, data_dir=Path(tmp), data=data, sinks=[rec], cuda_graphs=cuda_graphs).run()
    return [e[Metric.EPOCH_TIME] for e in rec.epochs]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    p.add_argument("--depth", type=int, default=56)
    p.add_argument("--n", type=int, default=50_000, help="training samples (CIFAR-10: 50,000)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--probe-every", type=int, default=10)
    p.add_argument("--amp", choices=("none", "bf16"), default="bf16")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--cuda-graphs", action="store_true", help="both sides: the model's forward and backward as CUDA "
                   "graphs (torch.cuda.make_graphed_callables; the trainer's SKIPWEB_CUDA_GRAPHS)")
    p.add_argument("--epochs", type=int, default=3, help="per build; all but the first are timed")
    p.add_argument("--reps", type=int, default=2)
    a = p.parse_args()
    device = torch.device(a.device)
    spec = RunSpec.parse(dict(family="resnet", depth=a.depth, dataset="cifar10", epochs=a.epochs, batch_size=a.batch_size,
                              lr=0.1, warmup_epochs=0, probe_every=a.probe_every, device=a.device, amp=a.amp,
                              channels_last=a.device == "cuda", compile=a.compile, seed=0))  # fmt: skip
    data = synthetic_cifar(a.n, device)
    print(f"{spec.label}, {a.n} CIFAR-shaped samples, batch {a.batch_size}, {a.device}, amp {a.amp}, "
          f"channels_last {spec.channels_last}, compile {a.compile}, cuda graphs {a.cuda_graphs}, "
          f"torch {torch.__version__}", flush=True)  # fmt: skip
    hand, ours = [], []
    for r in range(a.reps):
        h, t = hand_epochs(spec, data, device, a.cuda_graphs), trainer_epochs(spec, data, device, a.cuda_graphs)
        hand += [a.n / s for s in h[1:]]
        ours += [a.n / s for s in t[1:]]
        print(f"rep {r + 1}: hand loop {' '.join(f'{a.n / s:9.1f}' for s in h)}  trainer "
              f"{' '.join(f'{a.n / s:9.1f}' for s in t)} samples/s (first epoch of each untimed)", flush=True)
    h, t = statistics.median(hand), statistics.median(ours)
    print(f"hand loop median {h:.1f} samples/s; trainer median {t:.1f} samples/s")
    print(f"trainer/hand: ratio of medians {t / h:.3f}")


if __name__ == "__main__":
    main()
