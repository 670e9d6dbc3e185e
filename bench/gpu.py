"""Every GPU figure of the project in one go (issues 13 and 21). Run by bench/gpu.sh.

Each step is a subprocess with its own time limit, sized from the H200 figures in bench/RESULTS.md, and the
whole call has a budget (``--budget``, 6 minutes on a GPU): a step gets what is left of it if that is less
than its limit, and a step that would start with under 20 s left is a row saying so, with the command that
takes the rest. So a call always ends, and reports, within its budget, on a cold machine too. Each row is
printed, and the table rewritten to ``--out``/table.md, the moment its step ends; a failed or timed-out step
is a row saying so, with its log in ``--out``. In order of what matters most (on the last lent host, whose
kernel launches were 2.6x slower than the first one's, steps 1-4 would take about 5 minutes by the figures
it gave; the rest is a second call of about 5):

1. the one-click demo end to end: one `skipweb worker` started as `skipweb up` starts it on a GPU machine
   (its default runs per GPU), the degradation preset submitted, the story built: click → verdicts (goal 20 s);
2. the same with the workers replaying CUDA graphs (SKIPWEB_CUDA_GRAPHS=1, off by default until measured);
3. one ResNet-56 CIFAR-shaped epoch (bf16, channels-last, batch 128, GPU-resident data), the trainer against
   a hand-written loop, both compiled (goals: trainer >= 25,000 samples/s; >= 0.95x the loop);
4. the same, eager; 5. the same, both with CUDA graphs (make_graphed_callables);
6. the block-probe cost at probe interval 10 (goal <= 5%);
7. the CUDA tests;
8-10. packing: the demo with 4, 2 and 1 runs per GPU: its click → verdicts time, or how many of its 12 runs
   had finished when it was cut at 45 s (the whole demo with 8, the default on an H200, is step 1).

    bash bench/gpu.sh                 # on a CUDA machine
    bash bench/gpu.sh --dry-run       # the same steps, tiny and on the CPU (tests/test_bench_gpu.py)
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
T0 = time.monotonic()  # the budget counts from here, CUDA's start-up included


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
    """The steps in the order of what matters most (the module's docstring); a dry run has the same rows."""
    py = [sys.executable]
    demo, hand = py + ["bench/demo.py"], py + ["bench/hand_loop.py"]
    tests = py + [
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/training/test_cuda.py",
        "tests/data/test_data.py",
        "-k",
        "cuda",
    ]
    hand_goal, demo_goal, packing_goal = ">= 25,000/s; >= 0.95", "<= 20 s", "wall time falls with N"
    names = ("demo end to end (default runs per GPU)", "the same, the workers with SKIPWEB_CUDA_GRAPHS=1",
             "ResNet-56 epoch, trainer vs hand loop (compiled)", "the same, eager",
             "the same, both sides with CUDA graphs (make_graphed_callables)", "block-probe overhead at interval 10",
             "CUDA tests", *(f"packing: demo with {n} run{'s' if n > 1 else ''} per GPU" for n in (4, 2, 1)))  # fmt: skip
    if dry:  # tiny: checks that every step runs and prints its figure, not the GPU
        cpu, small = (
            ["--device", "cpu"],
            ["--n", "128", "--depth", "8", "--reps", "1", "--amp", "none", "--batch-size", "64"],
        )
        tiny = ["--seeds", "0", "--epochs", "1", "--subset", "128"]
        gpu_only = lambda i, goal: Step(names[i], [], (), goal, 0)  # noqa: E731
        return [
            Step(names[0], demo + ["--layout", "gpu", *tiny], (DEMO_FIGURE,), demo_goal, 600),
            gpu_only(1, demo_goal), gpu_only(2, hand_goal),
            Step(names[3], hand + cpu + small, HAND_FIGURES, hand_goal, 300), gpu_only(4, hand_goal),
            Step(names[5], py + ["bench/probe_cost.py", *cpu, "--depth", "8", "--no-runs", "--steps", "3", "--threads", "1"],
                 (r"interval +10: +(-?[\d.]+%)",), "<= 5%", 300),
            Step(names[6], tests, (r"(\d+ passed|\d+ skipped)[^\n]*",), "all pass", 300),
            gpu_only(7, packing_goal),
            Step(names[8], demo + ["--layout", "gpu:2", *tiny], (DEMO_FIGURE,), packing_goal, 600),
            gpu_only(9, packing_goal),
        ]  # fmt: skip
    cuda, epoch = ["--device", "cuda"], ["--device", "cuda", "--reps", "1", "--n", "25000"]
    return [
        Step(names[0], demo + ["--layout", "gpu"], (DEMO_FIGURE,), demo_goal, 75),  # 61 s on the last host
        Step(names[1], ["env", "SKIPWEB_CUDA_GRAPHS=1", *demo, "--layout", "gpu"], (DEMO_FIGURE,), demo_goal, 75),
        # 120 s with one compiled graph per side on the last host; the trainer's probe step is now a second one
        Step(names[2], hand + epoch + ["--compile"], HAND_FIGURES, hand_goal, 220),
        Step(names[3], hand + epoch, HAND_FIGURES, hand_goal, 55),  # 44 s
        Step(names[4], hand + epoch + ["--cuda-graphs"], HAND_FIGURES, hand_goal, 55),
        Step(names[5], py + ["bench/probe_cost.py", *cuda, "--no-runs", "--steps", "51", "--threads", "8"],
             (r"interval +10: +(-?[\d.]+%)",), "<= 5%", 35),  # 20 s
        Step(names[6], tests, (r"(\d+ passed[^\n]*|\d+ failed[^\n]*)",), "all pass", 150),  # 50 s; + a compile
        *[Step(names[7 + i], demo + ["--layout", f"gpu:{n}", "--cap", "45"], (DEMO_FIGURE,), packing_goal, 80)
          for i, n in enumerate((4, 2, 1))],  # 4 per GPU: 58 s, its runs done in 28
    ]  # fmt: skip


# what the steps import beyond torch (the lent machine's image lacks most of it: bench/gpu_wheels.sh)
NEEDS = ("sqlalchemy", "alembic", "pydantic_settings", "celery", "kombu", "tzlocal", "typer", "plotly", "sklearn",
         "skipweb.services.broker", "skipweb.cli.worker", "skipweb.stories", "db.run_queries")  # fmt: skip


def missing_imports() -> str | None:
    """None when every module the steps need imports; else one line saying what does not, and what to do."""
    import importlib

    for name in NEEDS:
        try:
            importlib.import_module(name)
        except ImportError as e:
            what = (
                f"no module {e.name!r}"
                if isinstance(e, ModuleNotFoundError) and e.name
                else str(e).splitlines()[0]
            )
            return (f"cannot import {name} ({what}): carry the wheels (bash bench/gpu_wheels.sh here, then .whl in "
                    "the call's carry and the pip line of its header)")  # fmt: skip
    return None


MIN_STEP_S = 20  # a step that would start with less of the budget left is not started


def run_step(i: int, step: Step, out: Path, left: float) -> tuple[str, str, str, str, str]:
    """One row: the step run under ``min(step.limit, left)`` seconds, or why it was not run."""
    if not step.argv:
        return (step.name, "not run: CUDA only", step.goal, "", "-")
    if left < MIN_STEP_S:
        return (step.name, f"not run: the call's budget was spent ({left:.0f} s left)", step.goal, "", "-")
    limit = int(min(step.limit, left))
    t0 = time.monotonic()
    # a session of its own: a step cut off takes its children (a demo's worker processes) with it, so that
    # nothing of it stays on the GPU under the next step's figures
    proc = subprocess.Popen(step.argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        text, _ = proc.communicate(timeout=limit)
        rc: int | str = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        text, _ = proc.communicate()
        rc = f"timeout after {limit} s" + (" (the budget's end)" if limit < step.limit else "")
    secs = time.monotonic() - t0
    (out / f"step{i + 1}.log").write_text(text)
    found = [m.group(1) for p in step.figures if (m := re.search(p, text))]
    if rc != 0:
        figure = f"FAILED ({rc}); see {out.name}/step{i + 1}.log" + (
            f" ({'; '.join(found)})" if found else ""
        )
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
    ap.add_argument(
        "--budget", type=float, help="seconds for the whole call (default: 360 on a GPU, none in a dry run)"
    )
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device (dry run)"
    head = f"{gpu}, torch {torch.__version__}"
    print(head, flush=True)
    if problem := missing_imports():  # before any of the budget goes: every step would fail on it
        print(problem, file=sys.stderr)
        return 2
    budget = a.budget if a.budget is not None else (float("inf") if a.dry_run else 360.0)
    rows, t_all, skipped = [], T0, []
    todo = steps(a.dry_run)
    chosen = {int(x) - 1 for x in a.only.split(",")} if a.only else set(range(len(todo)))
    for i, step in enumerate(todo):
        if i not in chosen:
            continue
        rows.append(run_step(i, step, a.out, budget - (time.monotonic() - t_all)))
        if rows[-1][1].startswith("not run: the call's budget"):
            skipped.append(str(i + 1))
        print(f"{rows[-1][0]}: {rows[-1][1]} ({rows[-1][3]})", flush=True)
        table = [
            "| check | figure | goal | time | ran |",
            "|---|---|---|---|---|",
            *("| " + " | ".join(r) + " |" for r in rows),
        ]
        (a.out / "table.md").write_text(
            f"{head}, {time.monotonic() - t_all:.0f} s so far\n\n" + "\n".join(table) + "\n"
        )
    print(f"\n{head}, {time.monotonic() - t_all:.0f} s in all\n")
    print((a.out / "table.md").read_text().split("\n\n", 1)[1])
    if skipped:
        print(f"the rest, in a second call: bash bench/gpu.sh --only {','.join(skipped)}")
    return 0 if all(r[4] != "no" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
