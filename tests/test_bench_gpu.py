"""bench/gpu.sh is ready for a GPU: its dry run takes every step, tiny and on the CPU, and prints the table."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_script_dry_run_prints_every_figure(tmp_path: Path) -> None:
    out = subprocess.run(["bash", "bench/gpu.sh", "--dry-run", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    table = out.stdout[out.stdout.index("| check |"):]
    rows = {ln.split(" | ")[0].lstrip("| "): ln for ln in table.splitlines()[2:]}
    assert set(rows) == {"CUDA tests", "trainer / bare loop (bf16, channels-last, GPU data)",
                         "trainer / hand-tuned loop, ResNet-56 epoch (eager)",
                         "trainer / hand-tuned loop (torch.compile)", "block-probe overhead at interval 10"}  # fmt: skip
    assert "FAILED" not in table and "no figure" not in table, table
    assert "skipped" in rows["CUDA tests"] or "passed" in rows["CUDA tests"]
    assert "not run: CUDA only" in rows["trainer / hand-tuned loop (torch.compile)"]
    for name in ("trainer / bare loop (bf16, channels-last, GPU data)", "trainer / hand-tuned loop, ResNet-56 epoch (eager)"):
        assert float(rows[name].split(" | ")[1]) > 0
    assert rows["block-probe overhead at interval 10"].split(" | ")[1].endswith("%")
    assert len(list(tmp_path.glob("step*.log"))) == 4
