"""bench/gpu.sh is ready for a GPU: its dry run takes every step, tiny and on the CPU (the demo with stand-in
GPU workers, `--gpus 0`), and prints the table row by row, keeping it in a file as it goes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import ROOT


@pytest.mark.slow
def test_gpu_script_dry_run_prints_every_figure(tmp_path: Path) -> None:
    out = subprocess.run(["bash", "bench/gpu.sh", "--dry-run", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    table = out.stdout[out.stdout.index("| check |"):]
    assert (tmp_path / "table.md").read_text().endswith(table.strip() + "\n")  # the file holds what was printed
    rows = {ln.split(" | ")[0].lstrip("| "): ln.split(" | ") for ln in table.splitlines()[2:] if ln.strip()}
    assert set(rows) == {"demo end to end (default runs per GPU)", "ResNet-56 epoch, trainer vs hand loop (eager)",
                         "ResNet-56 epoch, trainer vs hand loop (compiled)", "block-probe overhead at interval 10",
                         "packing: demo with 2 runs per GPU", "CUDA tests",
                         "the same, the workers with SKIPWEB_CUDA_GRAPHS=1",
                         "the same, both sides with CUDA graphs (make_graphed_callables)"}  # fmt: skip
    assert "FAILED" not in table and "no figure" not in table, table
    for name in ("ResNet-56 epoch, trainer vs hand loop (compiled)", "the same, the workers with SKIPWEB_CUDA_GRAPHS=1",
                 "the same, both sides with CUDA graphs (make_graphed_callables)"):
        assert "not run: CUDA only" in rows[name][1]
    for name in ("demo end to end (default runs per GPU)", "packing: demo with 2 runs per GPU"):
        assert "click → verdicts" in rows[name][1] and "/3 agree" in rows[name][1]
    eager = rows["ResNet-56 epoch, trainer vs hand loop (eager)"][1]
    assert "trainer median" in eager and float(eager.rsplit(" ", 1)[1]) > 0
    assert rows["block-probe overhead at interval 10"][1].endswith("%")
    assert "skipped" in rows["CUDA tests"][1] or "passed" in rows["CUDA tests"][1]
    # each row was printed the moment its step ended, before the table
    assert out.stdout.index("demo end to end (default runs per GPU): ") < out.stdout.index("CUDA tests: ")
    assert len(list(tmp_path.glob("step*.log"))) == 5
