"""What a worker process's first run pays before its first step, with and without the worker's warm-up.

Each rep starts two fresh Python processes (alternating which goes first) that import what a worker has
imported when Celery hands it a run; one also calls ``skipweb.cli.worker.warm_up`` (timed: paid before the
worker says it is connected, off the first click's path). Both then time a run's set-up as the trainer does
it (the dataset, the model and its FLOP count: ``Trainer.__init__``) for one of the demo's runs.

    python bench/first_run.py --reps 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
import torch
torch.set_num_threads(1)
import skipweb.training.trainer as T
from skipweb.stories import get_story
warm = 0.0
if sys.argv[1] == "warm":
    from skipweb.cli.worker import warm_up
    t = time.perf_counter(); warm_up(torch); warm = time.perf_counter() - t
spec = get_story("degradation").preset.specs([0])[0]
t = time.perf_counter()
T.Trainer(spec, data_dir=Path(tempfile.mkdtemp()))
print(json.dumps({"warm_up_s": warm, "setup_s": time.perf_counter() - t}))
"""


def child(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=3)
    a = p.parse_args()
    cold, warm, warm_up = [], [], []
    for r in range(a.reps):
        for mode in (("cold", "warm") if r % 2 == 0 else ("warm", "cold")):
            res = child(mode)
            (warm if mode == "warm" else cold).append(res["setup_s"])
            if mode == "warm":
                warm_up.append(res["warm_up_s"])
        print(f"rep {r + 1}: first run's set-up {cold[-1]:.2f} s without the warm-up, {warm[-1]:.2f} s after it "
              f"(warm-up {warm_up[-1]:.2f} s)", flush=True)
    c, w = statistics.median(cold), statistics.median(warm)
    print(f"median first-run set-up: {c:.2f} s cold, {w:.2f} s warmed ({c - w:.2f} s off each process's first run; "
          f"warm-up {statistics.median(warm_up):.2f} s before the worker connects)")


if __name__ == "__main__":
    main()
