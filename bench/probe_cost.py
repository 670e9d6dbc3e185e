"""Cost of the per-block probes (skip-path vs branch gradients + activation statistics + highway gates).

Two trainers of the same spec, in ONE process, alternating (a, b, a, b, ...) after an untimed warm-up of
each: (a) ``Trainer`` with its ``BlockProbe`` switched off (``trainer.blocks = None``: per-layer gradient
probes only), (b) the full trainer as every run uses it. Both probe every ``--probe-every`` steps and
evaluate every epoch; checkpoints are off. Reported: median wall and CPU time per run, and the ratio b/a
(the figure the issue targets: <= 1.05 at probe interval 10). ``--probe-every 1`` shows the worst case.

Whole runs on a shared machine are noisy at the 1% level, so the script also measures the cost per
probe step directly: one batch, forward + backward repeated ``--steps`` times, alternating probed
(arm, forward, backward, collect, fetch to host) and unprobed, medians of each. Dividing the extra time
by ``probe_every`` unprobed steps gives the overhead at that interval (conservative: a real step also
has the optimizer update, which makes it longer).

    .venv/bin/python bench/probe_cost.py --family resnet --depth 56 --reps 7 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from skipweb.data import load_dataset
from skipweb.spec import RunSpec
from skipweb.training.trainer import Trainer


def timed(spec: RunSpec, data, blocks: bool) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(spec, data_dir=Path(tmp), data=data)
        if not blocks:
            trainer.blocks = None
        w0, c0 = time.perf_counter(), time.process_time()
        result = trainer.run()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    assert result.status == "succeeded", result.reason
    return wall, cpu, result.steps


def step_costs(spec: RunSpec, data, steps: int) -> tuple[float, float]:
    """Median seconds of one forward+backward without and with the block probes (same batch)."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(spec, data_dir=Path(tmp), data=data)
    model, probe, loss_fn = trainer.model, trainer.blocks, trainer.loss_fn
    x, y = next(iter(trainer.train_loader))
    model.train()
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(2 * steps + 4):
        armed = i % 2 == 1
        t0 = time.perf_counter()
        if armed:
            probe.arm()
        loss = loss_fn(model(x), y)
        model.zero_grad(set_to_none=True)
        loss.backward()
        if armed:
            probe.collect().tolist()
        else:
            loss.item()
        if i >= 4:  # warm-up
            times[armed].append(time.perf_counter() - t0)
    return statistics.median(times[False]), statistics.median(times[True])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="resnet")
    ap.add_argument("--depth", type=int, default=56)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--probe-every", type=int, default=10)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=101, help="repetitions for the per-step measurement")
    ap.add_argument("--no-runs", action="store_true", help="only the per-step measurement")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = RunSpec.parse(dict(
        family=args.family, depth=args.depth, dataset=args.dataset, epochs=args.epochs,
        batch_size=args.batch_size, probe_every=args.probe_every, device=args.device, seed=0,
    ))
    data = load_dataset(spec.dataset, data_dir=Path(tempfile.gettempdir()) / "skipweb-bench-data", seed=0)
    print(f"{spec.label} on {spec.dataset}, batch {args.batch_size}, {args.threads} thread(s), {args.device}")
    plain, probed = step_costs(spec, data, args.steps)
    extra = probed - plain
    print(f"  per step (median of {args.steps}): forward+backward {plain * 1e3:.2f} ms, "
          f"with block probes {probed * 1e3:.2f} ms (+{extra * 1e3:.2f} ms, {probed / plain:.3f}x)")
    for k in sorted({1, 10, args.probe_every}):
        print(f"  overhead at probe interval {k:3d}: {100 * extra / (k * plain):5.2f}%")
    if args.no_runs:
        return
    timed(spec, data, False), timed(spec, data, True)  # warm-up
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    steps = 0
    for _ in range(args.reps):
        for blocks in (False, True):
            wall, cpu, steps = timed(spec, data, blocks)
            runs[blocks].append((wall, cpu))
    med = {b: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r)) for b, r in runs.items()}
    print(f"  whole runs: {args.epochs} epochs ({steps} steps), probe every {args.probe_every}, "
          f"{args.reps} alternating reps")
    for b, name in ((False, "grad probes only"), (True, "+ block probes")):
        walls = [w for w, _ in runs[b]]
        print(f"  {name:18s} wall {med[b][0]:7.2f} s (min {min(walls):.2f}, max {max(walls):.2f})   "
              f"cpu {med[b][1]:7.2f} s")
    print(f"  ratio (block probes / without): wall {med[True][0] / med[False][0]:.3f}x   "
          f"cpu {med[True][1] / med[False][1]:.3f}x")


if __name__ == "__main__":
    main()
