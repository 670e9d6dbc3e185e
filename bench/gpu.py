"""Every GPU figure of the project in one go (issues 13 and 21). Run by bench/gpu.sh.

Each step is a subprocess with its own time limit, sized from the H200 figures in bench/RESULTS.md so that
the whole fits in 6 minutes on a cold machine (it did not on the last lent host: about 8, RESULTS.md); each row is printed, and the table rewritten to
``--out``/table.md, the moment its step ends, so a cut-off run still reports every step before the cut. A
failed or timed-out step is a row saying so, with its log in ``--out``. In order of what matters most:

1. the one-click demo end to end: one `skipweb worker` started as `skipweb up` starts it on a GPU machine
   (its default runs per GPU), the degradation preset submitted, the story built: click → verdicts (goal 20 s);
   and the same with the workers replaying CUDA graphs (SKIPWEB_CUDA_GRAPHS=1, off by default until measured);
2. one ResNet-56 CIFAR-shaped epoch (bf16, channels-last, batch 128, GPU-resident data), the trainer
   against a hand-written loop, eager, with CUDA graphs and compiled (goals: trainer >= 25,000 samples/s;
   >= 0.95x the loop);
3. the block-probe cost at probe interval 10 (goal <= 5%);
4. packing: with 4, 2 and 1 runs per GPU, how many of the demo's 12 runs finish in the 25 s after the click
   (the whole demo with 8, the default on an H200, is step 1);
5. the CUDA tests.

    bash bench/gpu.sh                 # on a CUDA machine
    bash bench/gpu.sh --dry-run       # the same steps, tiny and on the CPU (tests/test_bench_gpu.py)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Step:
    name: str
    argv: list[str]
    figures: tuple[str, ...]  # regexes; the row shows each one's first group, joined by "; "
    goal: str
    limit: int  # seconds


DEMO_FIGURE = r"(click → verdicts [\d.]+ s; \d+/\d+ agree|CAPPED at \d+ s with \d+/\d+ finished)"
HAND_FIGURES = (r"(trainer median [\d.]+ samples/s)", r"(hand loop median [\d.]+ samples/s)",
                r"trainer/hand: (ratio of medians [\d.]+)")  # fmt: skip


def steps(dry: bool) -> list[Step]:
    py = [sys.executable]
    demo = py + ["bench/demo.py"]
    hand = py + ["bench/hand_loop.py"]
    if dry:  # tiny: checks that every step runs and prints its figure, not the GPU
        cpu, small = ["--device", "cpu"], ["--n", "128", "--depth", "8", "--reps", "1", "--amp", "none", "--batch-size", "64"]
        return [
            Step("demo end to end (default runs per GPU)", demo + ["--layout", "gpu", "--seeds", "0", "--epochs", "1", "--subset", "128"], (DEMO_FIGURE,),
                 "<= 20 s", 600),
            Step("the same, the workers with SKIPWEB_CUDA_GRAPHS=1", [], (), "<= 20 s", 0),
            Step("ResNet-56 epoch, trainer vs hand loop (eager)", hand + cpu + small, HAND_FIGURES,
                 ">= 25,000/s; >= 0.95", 300),
            Step("the same, both sides with CUDA graphs (make_graphed_callables)", [], (), ">= 25,000/s; >= 0.95", 0),
            Step("ResNet-56 epoch, trainer vs hand loop (compiled)", [], (), ">= 25,000/s; >= 0.95", 0),
            Step("block-probe overhead at interval 10", py + ["bench/probe_cost.py", *cpu, "--depth", "8", "--no-runs",
                 "--steps", "3", "--threads", "1"], (r"interval +10: +(-?[\d.]+%)",), "<= 5%", 300),
            Step("packing: demo with 2 runs per GPU", demo + ["--layout", "gpu:2", "--seeds", "0", "--epochs", "1", "--subset", "128"], (DEMO_FIGURE,),
                 "faster than 1 per GPU", 600),
            Step("CUDA tests", py + ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/training/test_cuda.py",
                 "tests/data/test_data.py", "-k", "cuda"], (r"(\d+ passed|\d+ skipped)[^\n]*",), "all pass", 300),
        ]  # fmt: skip
    cuda = ["--device", "cuda"]
    return [
        Step("demo end to end (default runs per GPU)", demo + ["--layout", "gpu"], (DEMO_FIGURE,), "<= 20 s", 100),
        Step("the same, the workers with SKIPWEB_CUDA_GRAPHS=1", ["env", "SKIPWEB_CUDA_GRAPHS=1", *demo, "--layout", "gpu"],
             (DEMO_FIGURE,), "<= 20 s", 100),
        Step("ResNet-56 epoch, trainer vs hand loop (eager)", hand + cuda + ["--reps", "1", "--n", "25000"],
             HAND_FIGURES, ">= 25,000/s; >= 0.95", 75),
        Step("the same, both sides with CUDA graphs (make_graphed_callables)", hand + cuda + ["--reps", "1", "--n", "25000",
             "--cuda-graphs"], HAND_FIGURES, ">= 25,000/s; >= 0.95", 75),
        Step("ResNet-56 epoch, trainer vs hand loop (compiled)", hand + cuda + ["--reps", "1", "--n", "25000", "--compile"],
             HAND_FIGURES, ">= 25,000/s; >= 0.95", 240),  # 120 s with one compiled graph; the probe step's is second
        Step("block-probe overhead at interval 10", py + ["bench/probe_cost.py", *cuda, "--no-runs", "--steps", "51",
             "--threads", "8"], (r"interval +10: +(-?[\d.]+%)",), "<= 5%", 40),
        *[Step(f"packing: demo with {n} run{'s' if n > 1 else ''} per GPU", demo + ["--layout", f"gpu:{n}", "--cap", str(cap)],
               (DEMO_FIGURE,), "wall time falls with N", cap + 25) for n, cap in ((4, 25), (2, 25), (1, 25))],
        Step("CUDA tests", py + ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/training/test_cuda.py", "tests/data/test_data.py",
             "-k", "cuda"], (r"(\d+ passed[^\n]*|\d+ failed[^\n]*)",), "all pass", 150),  # 50 s; + a compile
    ]  # fmt: skip


def run_step(i: int, step: Step, out: Path) -> tuple[str, str, str, str, str]:
    if not step.argv:
        return (step.name, "not run: CUDA only", step.goal, "", "-")
    t0 = time.monotonic()
    try:
        done = subprocess.run(step.argv, cwd=ROOT, capture_output=True, text=True, timeout=step.limit)
        text, rc = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as e:
        text = "".join(b.decode(errors="replace") if isinstance(b, bytes) else (b or "") for b in (e.stdout, e.stderr))
        rc = f"timeout after {step.limit} s"
    secs = time.monotonic() - t0
    (out / f"step{i + 1}.log").write_text(text)
    found = [m.group(1) for p in step.figures if (m := re.search(p, text))]
    if rc != 0:
        figure = f"FAILED ({rc}); see {out.name}/step{i + 1}.log" + (f" ({'; '.join(found)})" if found else "")
    elif len(found) < len(step.figures):
        figure = f"no figure in the output; see {out.name}/step{i + 1}.log"
    else:
        figure = "; ".join(found)
    return (step.name, figure, step.goal, f"{secs:.0f} s", "ok" if rc == 0 else "no")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="tiny, on the CPU: checks the script, not the GPU")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "gpu-out")
    ap.add_argument("--only", help="comma list of step numbers to run (1-based)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device (dry run)"
    head = f"{gpu}, torch {torch.__version__}"
    print(head, flush=True)
    rows, t_all = [], time.monotonic()
    todo = steps(a.dry_run)
    chosen = {int(x) - 1 for x in a.only.split(",")} if a.only else set(range(len(todo)))
    for i, step in enumerate(todo):
        if i not in chosen:
            continue
        rows.append(run_step(i, step, a.out))
        print(f"{rows[-1][0]}: {rows[-1][1]} ({rows[-1][3]})", flush=True)
        table = ["| check | figure | goal | time | ran |", "|---|---|---|---|---|", *("| " + " | ".join(r) + " |" for r in rows)]
        (a.out / "table.md").write_text(f"{head}, {time.monotonic() - t_all:.0f} s so far\n\n" + "\n".join(table) + "\n")
    print(f"\n{head}, {time.monotonic() - t_all:.0f} s in all\n")
    print((a.out / "table.md").read_text().split("\n\n", 1)[1])
    return 0 if all(r[4] != "no" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
