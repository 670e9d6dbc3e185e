"""bench/gpu.sh is ready for a GPU: its dry run takes every step, tiny and on the CPU (the demo with stand-in
GPU workers, `--gpus 0`), and prints the table row by row, keeping it in a file as it goes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests import ROOT

NAMES = [
    "demo end to end (default runs per GPU)",
    "the same, the workers with SKIPWEB_CUDA_GRAPHS=1",
    "ResNet-56 epoch, trainer vs hand loop (compiled)",
    "the same, eager",
    "the same, both sides with CUDA graphs (make_graphed_callables)",
    "block-probe overhead at interval 10",
    "CUDA tests",
    "packing: demo with 4 runs per GPU",
    "packing: demo with 2 runs per GPU",
    "packing: demo with 1 run per GPU",
]  # in the order of what matters most


def test_gpu_script_keeps_to_its_budget_and_says_what_is_left(tmp_path: Path) -> None:
    """A call whose budget is spent runs no further step: each is a row saying so, and the script ends by
    printing the call that takes the rest."""
    out = subprocess.run(["bash", "bench/gpu.sh", "--dry-run", "--budget", "0", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [
        ln.split(" | ")
        for ln in out.stdout[out.stdout.index("| check |") :].splitlines()[2:]
        if ln.startswith("| ")
    ]
    assert [r[0].lstrip("| ") for r in rows] == NAMES
    spent = [i + 1 for i, r in enumerate(rows) if r[1].startswith("not run: the call's budget was spent")]
    assert spent == [1, 4, 6, 7, 9]  # the others are CUDA only in a dry run
    assert out.stdout.rstrip().endswith("the rest, in a second call: bash bench/gpu.sh --only 1,4,6,7,9")
    assert not list(tmp_path.glob("step*.log"))


@pytest.mark.slow
def test_gpu_script_dry_run_prints_every_figure(tmp_path: Path) -> None:
    out = subprocess.run(["bash", "bench/gpu.sh", "--dry-run", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    table = out.stdout[out.stdout.index("| check |") :]
    assert (
        (tmp_path / "table.md").read_text().endswith(table.strip() + "\n")
    )  # the file holds what was printed
    rows = {ln.split(" | ")[0].lstrip("| "): ln.split(" | ") for ln in table.splitlines()[2:] if ln.strip()}
    assert list(rows) == NAMES
    assert "FAILED" not in table and "no figure" not in table, table
    for name in ("ResNet-56 epoch, trainer vs hand loop (compiled)", "the same, the workers with SKIPWEB_CUDA_GRAPHS=1",
                 "the same, both sides with CUDA graphs (make_graphed_callables)", "packing: demo with 4 runs per GPU",
                 "packing: demo with 1 run per GPU"):  # fmt: skip
        assert "not run: CUDA only" in rows[name][1]
    for name in ("demo end to end (default runs per GPU)", "packing: demo with 2 runs per GPU"):
        assert "click → verdicts" in rows[name][1] and "/3 agree" in rows[name][1]
    eager = rows["the same, eager"][1]
    assert "trainer median" in eager and float(eager.rsplit(" ", 1)[1]) > 0
    assert rows["block-probe overhead at interval 10"][1].endswith("%")
    assert "skipped" in rows["CUDA tests"][1] or "passed" in rows["CUDA tests"][1]
    # each row was printed the moment its step ended, before the table
    assert out.stdout.index("demo end to end (default runs per GPU): ") < out.stdout.index("CUDA tests: ")
    assert len(list(tmp_path.glob("step*.log"))) == 5


def test_gpu_script_names_a_missing_package_before_spending_its_budget(tmp_path: Path) -> None:
    """On the lent machine a package its image lacks (the last one: tzlocal, Celery's) failed every demo step;
    now the script stops first, with one line naming it and what to carry."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()  # a machine without tzlocal: its import fails as a missing package's does
    (shadow / "tzlocal.py").write_text("raise ModuleNotFoundError(\"No module named 'tzlocal'\", name='tzlocal')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow), str(ROOT)])}
    out = subprocess.run(["bash", "bench/gpu.sh", "--dry-run", "--out", str(tmp_path / "out")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.strip() == ("cannot import tzlocal (no module 'tzlocal'): carry the wheels (bash "
                                  "bench/gpu_wheels.sh here, then .whl in the call's carry and the pip line of its header)")  # fmt: skip
    assert "| check |" not in out.stdout and not list((tmp_path / "out").glob("step*.log"))
