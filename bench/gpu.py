"""Every GPU figure of the project in one go, printed as one table (issue 13 item 6). Run by bench/gpu.sh.

On one GPU, in under 8 minutes: the CUDA tests; the trainer-overhead benchmark with bf16, channels-last and
GPU-resident CIFAR-shaped data (goal >= 0.95x a bare loop); one ResNet-56 CIFAR-shaped epoch against a
hand-tuned airbench-style loop, eager (goal >= 0.8x) and with torch.compile on both sides; the per-block
probe cost on the GPU at probe interval 10. Each step is a subprocess with its own time limit; its full
output goes to ``--out`` (default bench/gpu-out/), and a failed or timed-out step is a row saying so.

    bash bench/gpu.sh                 # on a CUDA machine
    bash bench/gpu.sh --dry-run       # the same steps, tiny and on the CPU (tests/test_bench_gpu.py)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def steps(dry: bool) -> list[tuple[str, list[str], str, str, int]]:
    """(name, argv, regex of the figure, goal, time limit in s)."""
    py = [sys.executable]
    if dry:
        dev = ["--device", "cpu"]
        return [
            ("CUDA tests", py + ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py",
                                 "tests/test_data.py", "-k", "cuda"], r"(\d+ passed|\d+ skipped)[^\n]*", "all pass", 300),
            ("trainer / bare loop (bf16, channels-last, GPU data)", py + ["bench/train_overhead.py", *dev,
             "--synthetic-cifar", "--synthetic-n", "128", "--depth", "8", "--epochs", "1", "--reps", "1",
             "--batch-size", "64"], r"b/a: ratio of medians ([\d.]+)", ">= 0.95", 300),
            ("trainer / hand-tuned loop, ResNet-56 epoch (eager)", py + ["bench/hand_loop.py", *dev, "--n", "128",
             "--depth", "8", "--reps", "1", "--amp", "none", "--batch-size", "64"],
             r"ratio of medians ([\d.]+)", ">= 0.8", 300),
            ("trainer / hand-tuned loop (torch.compile)", [], "", ">= 0.8", 0),  # CUDA only
            ("block-probe overhead at interval 10", py + ["bench/probe_cost.py", *dev, "--depth", "8", "--no-runs",
             "--steps", "3", "--threads", "1"], r"interval +10: +(-?[\d.]+%)", "<= 5%", 300),
        ]  # fmt: skip
    dev = ["--device", "cuda"]
    return [
        ("CUDA tests", py + ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py", "tests/test_data.py",
                             "-k", "cuda"], r"(\d+ passed[^\n]*|\d+ failed[^\n]*)", "all pass", 150),
        ("trainer / bare loop (bf16, channels-last, GPU data)", py + ["bench/train_overhead.py", *dev, "--amp", "bf16",
         "--channels-last", "--synthetic-cifar", "--epochs", "2", "--reps", "3"], r"b/a: ratio of medians ([\d.]+)",
         ">= 0.95", 90),
        ("trainer / hand-tuned loop, ResNet-56 epoch (eager)", py + ["bench/hand_loop.py", *dev, "--reps", "3"],
         r"ratio of medians ([\d.]+)", ">= 0.8", 90),
        ("trainer / hand-tuned loop (torch.compile)", py + ["bench/hand_loop.py", *dev, "--reps", "2", "--compile"],
         r"ratio of medians ([\d.]+)", ">= 0.8", 150),
        ("block-probe overhead at interval 10", py + ["bench/probe_cost.py", *dev, "--no-runs", "--steps", "51",
         "--threads", "8"], r"interval +10: +(-?[\d.]+%)", "<= 5%", 60),
    ]  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="tiny, on the CPU: checks the script, not the GPU")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "gpu-out")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    rows, t_all = [], time.monotonic()
    for i, (name, argv, pattern, goal, limit) in enumerate(steps(a.dry_run)):
        if not argv:
            rows.append((name, "not run: CUDA only", goal, "", "-"))
            continue
        t0 = time.monotonic()
        try:
            done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=limit)
            text, rc = done.stdout + done.stderr, done.returncode
        except subprocess.TimeoutExpired as e:
            text, rc = f"{e.stdout or ''}{e.stderr or ''}", "timeout"
        secs = time.monotonic() - t0
        (a.out / f"step{i + 1}.log").write_text(text if isinstance(text, str) else text.decode(errors="replace"))
        found = re.search(pattern, text if isinstance(text, str) else "")
        if rc != 0:
            figure = f"FAILED ({rc}); see {a.out.name}/step{i + 1}.log"
        else:
            figure = found.group(1) if found else f"no figure in the output; see {a.out.name}/step{i + 1}.log"
        rows.append((name, figure, goal, f"{secs:.0f} s", "ok" if rc == 0 else "no"))
        print(f"{name}: {figure} ({secs:.0f} s)", flush=True)
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device (dry run)"
    print(f"\n{gpu}, torch {torch.__version__}, {time.monotonic() - t_all:.0f} s in all\n")
    print("| check | figure | goal | time | ran |\n|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0 if all(r[4] != "no" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
