"""Wall time of a loss landscape (skipweb.training.landscape.compute): an N×N filter-normalized 2-D grid
plus the 2N-1 point initial→final interpolation, around a briefly trained model (default ResNet-20 on
digits, 1 epoch), loss over 512 training samples in eval mode.

    .venv/bin/python bench/landscape.py --grid 21

Prints the training time (not counted), the landscape time, the number of loss evaluations and the time per
evaluation.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

from skipweb.spec import RunSpec
from skipweb.training import landscape as L
from skipweb.training.trainer import Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="resnet")
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--grid", type=int, default=21)
    ap.add_argument("--range", type=float, default=1.0)
    ap.add_argument("--subset", type=int, default=512)
    ap.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "skipweb-bench-data")
    args = ap.parse_args()

    spec = RunSpec(
        family=args.family, depth=args.depth, dataset=args.dataset, epochs=args.epochs, device="cpu"
    )
    t = time.perf_counter()
    trainer = Trainer(spec, data_dir=args.data_dir)
    trainer.run()
    train_s = time.perf_counter() - t
    state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    n = L.evaluations(args.grid)
    t = time.perf_counter()
    result = L.compute(
        spec, state, data_dir=args.data_dir, grid=args.grid, range_=args.range, subset=args.subset
    )
    wall = time.perf_counter() - t
    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    print(f"{spec.label} on {spec.dataset}: trained {args.epochs} epoch(s) in {train_s:.1f} s (not counted)")
    print(
        f"landscape {args.grid}x{args.grid} ±{args.range} + {n - args.grid**2}-point interpolation, "
        f"subset {args.subset}: {wall:.1f} s, {n} loss evaluations, {1000 * wall / n:.0f} ms each; "
        f"final loss {result.final_loss:.4g}"
    )


if __name__ == "__main__":
    main()
