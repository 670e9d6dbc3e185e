"""Training overhead of the skipweb Trainer against a bare PyTorch loop.

Both sides train the same model (``get_model`` with the spec's resolved options, same seed), on the same data
(the same ``DeviceLoader`` batches: same generator seed, augmentation, normalisation, memory format), for the
same number of steps, with the same optimiser (``torch.optim.SGD``: lr, momentum, nesterov, weight decay from
the spec) and the same per-step learning-rate schedule (multistep at the same steps, as a plain
``MultiStepLR``). So that the comparison is like-for-like, the bare loop also does what every training run must
do and the trainer does per epoch: evaluate on val and test (eval mode, no_grad, loss and error summed on the
device, one host sync per split). What the bare loop leaves out is exactly the trainer's instrumentation and
bookkeeping: per-step train error, the per-step metric window and its flush (one host sync every
``probe_every`` steps), the gradient probes (``GradProbe.before_step/after_step`` every ``probe_every`` steps),
the ``GradScaler`` wrapper, sinks (a ``Recorder``) and the epoch summary. Checkpointing is off on both sides.

The two are timed in ONE process, alternating (a, b, a, b, ...) after one untimed warm-up run of each, so that
drifting load on a shared machine hits both alike. Construction (model, ``count_flops``, loaders) is outside
the timed region on both sides; the timed region is ``Trainer.run()`` against the bare loop (epochs of
training + eval), with a device synchronise at the end on CUDA. Throughput is training samples per second
(epochs x train samples / wall); the reported figure is the median over repetitions, with min-max spread.

    .venv/bin/python bench/train_overhead.py --family resnet --depth 56 --dataset digits --epochs 3 --reps 9

GPU variant (CIFAR-shaped random uint8 data resident on the GPU, crop+flip as for CIFAR):

    python bench/train_overhead.py --device cuda --amp bf16 --channels-last --synthetic-cifar --epochs 2

``--profile`` adds a per-section timing of the trainer's extra work (probe, flush, error, scaler, schedule).
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
from torch import nn

from skipweb.data import IGNORE_INDEX, DataBundle, DeviceLoader, Split, get_dataset_info, load_dataset
from skipweb.spec import RunSpec
from skipweb.training.sinks import Recorder
from skipweb.training.trainer import Trainer


def make_spec(args: argparse.Namespace) -> RunSpec:
    return RunSpec.parse(
        dict(
            family=args.family,
            depth=args.depth,
            dataset="cifar10" if args.synthetic_cifar else args.dataset,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=0,
            probe_every=args.probe_every,
            device=args.device,
            amp=args.amp,
            channels_last=args.channels_last,
        )
    )


def synthetic_cifar(n: int, device: torch.device) -> DataBundle:
    """CIFAR-10-shaped random uint8 images and labels, resident on ``device`` (the loader's .to() is a no-op)."""
    g = torch.Generator().manual_seed(0)

    def split(k: int) -> Split:
        x = torch.randint(0, 256, (k, 3, 32, 32), dtype=torch.uint8, generator=g)
        y = torch.randint(0, 10, (k,), generator=g)
        return Split(x.to(device), y.to(device))

    return DataBundle(
        get_dataset_info("cifar10"),
        split(n),
        split(n // 5),
        split(n // 5),
        (0.49, 0.48, 0.45),
        (0.25, 0.24, 0.26),
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---- (a) the bare loop ----------------------------------------------------------------------------------
class BareRun:
    """Plain PyTorch: model, SGD, MultiStepLR, the same DeviceLoader batches, cross-entropy, per-epoch eval."""

    def __init__(self, spec: RunSpec, data: DataBundle, device: torch.device):
        self.spec, self.device = spec, device
        torch.manual_seed(spec.seed)
        info = data.info
        model = spec.build_model(info).to(device)
        if spec.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        common = dict(mean=data.mean, std=data.std, device=device, channels_last=spec.channels_last)
        augment = info.augment if spec.augment else "none"
        self.train = DeviceLoader(
            data.train,
            batch_size=spec.batch_size,
            shuffle=True,
            augment=augment,
            generator=torch.Generator().manual_seed(spec.seed),
            **common,
        )
        eval_bs = max(spec.batch_size, 256)
        self.evals = [DeviceLoader(s, batch_size=eval_bs, **common) for s in (data.val, data.test)]
        self.opt = torch.optim.SGD(
            model.parameters(),
            lr=spec.lr,
            momentum=spec.momentum,
            nesterov=spec.nesterov and spec.momentum > 0,
            weight_decay=spec.weight_decay,
        )
        total = spec.epochs * len(self.train)
        self.sched = torch.optim.lr_scheduler.MultiStepLR(
            self.opt, [int(m * total) for m in spec.milestones], gamma=spec.gamma
        )
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(spec.amp)
        self.autocast = (
            (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else contextlib.nullcontext
        )
        self.loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)

    def run(self) -> list[float]:
        model, opt = self.model, self.opt
        scores = []
        for _ in range(self.spec.epochs):
            model.train()
            for x, y in self.train:
                with self.autocast():
                    logits = model(x)
                loss = self.loss_fn(logits.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                self.sched.step()
            model.eval()
            with torch.no_grad():
                for loader in self.evals:
                    loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
                    wrong = torch.zeros((), device=self.device, dtype=torch.float64)
                    for x, y in loader:
                        with self.autocast():
                            logits = model(x).float()
                        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum")
                        wrong += (logits.argmax(1) != y).sum()
                    scores += [loss_sum.item() / len(loader.x), wrong.item() / len(loader.x)]
        return scores


# ---- (b) the trainer ------------------------------------------------------------------------------------
def make_trainer(spec: RunSpec, data: DataBundle, data_dir: Path) -> tuple[Trainer, Recorder]:
    rec = Recorder()
    return Trainer(spec, data_dir=data_dir, checkpoint_dir=None, sinks=[rec], data=data), rec


def timed(fn, device: torch.device) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def timed2(fn, device: torch.device) -> tuple[float, float]:
    """(wall seconds, process CPU seconds). On a contended CPU box, CPU time does not count the time the
    process was descheduled; with --threads 1 it is the work done, the fairer comparison there."""
    sync(device)
    t, c = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - t, time.process_time() - c


def run_bare(spec, data, device) -> float:
    bare = BareRun(spec, data, device)
    return timed2(bare.run, device)


def run_trainer(spec, data, device, data_dir) -> float:
    trainer, rec = make_trainer(spec, data, data_dir)
    elapsed = timed2(trainer.run, device)
    if rec.result is None or rec.result.status != "succeeded":
        sys.exit(f"trainer run did not succeed: {rec.result}")
    return elapsed


# ---- optional: where the trainer's extra time goes ---------------------------------------------------------
def profile_trainer(spec: RunSpec, data: DataBundle, device: torch.device, data_dir: Path) -> None:
    """Time the trainer's extra sections by wrapping them (with a sync on CUDA so the time lands in place)."""
    import skipweb.training.trainer as tr

    trainer, _ = make_trainer(spec, data, data_dir)
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}

    def wrap(obj, name: str, label: str) -> None:
        orig = getattr(obj, name)

        def inner(*a, **k):
            sync(device)
            t = time.perf_counter()
            out = orig(*a, **k)
            sync(device)
            totals[label] = totals.get(label, 0.0) + time.perf_counter() - t
            counts[label] = counts.get(label, 0) + 1
            return out

        setattr(obj, name, inner)

    wrap(trainer.probe, "before_step", "probe.before_step")
    wrap(trainer.probe, "after_step", "probe.after_step")
    wrap(trainer, "_flush", "_flush (sync + sinks)")
    wrap(trainer.scaler, "step", "scaler.step (incl. SGD step)")
    wrap(trainer.scaler, "scale", "scaler.scale")
    wrap(trainer.scaler, "update", "scaler.update")
    wrap(trainer.schedule, "step", "schedule.step")
    wrap(trainer.schedule, "get_last_lr", "schedule.get_last_lr")
    orig_eval = tr.evaluate

    def eval_timed(*a, **k):
        t = time.perf_counter()
        out = orig_eval(*a, **k)
        totals["evaluate"] = totals.get("evaluate", 0.0) + time.perf_counter() - t
        counts["evaluate"] = counts.get("evaluate", 0) + 1
        return out

    tr.evaluate = eval_timed
    try:
        total = timed(trainer.run, device)
    finally:
        tr.evaluate = orig_eval
    steps = trainer.step
    print(f"\ntrainer sections over one run ({steps} steps, {total:.2f} s total):")
    for label, secs in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(
            f"  {label:32s} {secs * 1e3:9.1f} ms  {counts[label]:5d} calls  {secs / steps * 1e3:7.3f} ms/step"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--family", default="resnet")
    p.add_argument("--depth", type=int, default=56)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--probe-every", type=int, default=10)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--amp", choices=("none", "bf16"), default="none")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--synthetic-cifar", action="store_true", help="CIFAR-shaped random data on the device")
    p.add_argument("--synthetic-n", type=int, default=10_000, help="training samples for --synthetic-cifar")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: leave as is)")
    p.add_argument("--profile", action="store_true", help="also time the trainer's sections once")
    args = p.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    spec = make_spec(args)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        if args.synthetic_cifar:
            data = synthetic_cifar(args.synthetic_n, device)
        else:
            data = load_dataset(spec.dataset, data_dir=data_dir, seed=spec.seed)
        n_samples = spec.epochs * len(data.train)
        print(
            f"{spec.label} on {spec.dataset}{' (synthetic)' if args.synthetic_cifar else ''}: "
            f"{len(data.train)} train / {len(data.val)} val / {len(data.test)} test, batch {spec.batch_size}, "
            f"{spec.epochs} epochs, probe every {spec.probe_every}; device {device}, amp {spec.amp}, "
            f"channels_last {spec.channels_last}, threads {torch.get_num_threads()}, torch {torch.__version__}"
        )
        # warm-up: one untimed run of each
        run_bare(spec, data, device)
        run_trainer(spec, data, device, data_dir)
        bare_t, trainer_t = [], []
        for r in range(args.reps):
            bare_t.append(run_bare(spec, data, device))
            trainer_t.append(run_trainer(spec, data, device, data_dir))
            (aw, ac), (bw, bc) = bare_t[-1], trainer_t[-1]
            print(
                f"rep {r + 1:2d}: wall bare {n_samples / aw:7.1f}  trainer {n_samples / bw:7.1f} samples/s "
                f"(ratio {aw / bw:.3f}) | cpu bare {n_samples / ac:7.1f}  trainer {n_samples / bc:7.1f} "
                f"(ratio {ac / bc:.3f})",
                flush=True,
            )
        for k, name in ((0, "wall-clock"), (1, "process CPU time")):
            a = [n_samples / t[k] for t in bare_t]
            b = [n_samples / t[k] for t in trainer_t]
            ratios = [ta[k] / tb[k] for ta, tb in zip(bare_t, trainer_t, strict=True)]
            print(f"{name}:")
            print(
                f"  (a) bare loop: median {statistics.median(a):7.1f} samples/s (min {min(a):.1f}, max {max(a):.1f})"
            )
            print(
                f"  (b) trainer  : median {statistics.median(b):7.1f} samples/s (min {min(b):.1f}, max {max(b):.1f})"
            )
            print(
                f"  b/a: ratio of medians {statistics.median(b) / statistics.median(a):.3f}; best-of "
                f"{max(b) / max(a):.3f}; paired per-rep median {statistics.median(ratios):.3f} "
                f"(min {min(ratios):.3f}, max {max(ratios):.3f})"
            )
        if args.profile:
            profile_trainer(spec, data, device, data_dir)


if __name__ == "__main__":
    main()
