"""Skip/branch gradient ratios per block at initialisation and after 4 epochs on digits (the README table).

.venv/bin/python bench/block_ratios.py
"""

import tempfile
from pathlib import Path

import numpy as np
import torch

from skipweb.spec import RunSpec
from skipweb.training.sinks import Recorder
from skipweb.training.trainer import Trainer

torch.set_num_threads(1)
for fam, depth, opts in [
    ("resnet", 56, {}),
    ("resnet", 56, {"block": "preact"}),
    ("highway", 56, {}),
    ("densenet", 40, {}),
    ("resnet", 56, {"norm": "none", "init": "small"}),
]:
    spec = RunSpec.parse(
        {
            "family": fam,
            "depth": depth,
            "dataset": "digits",
            "epochs": 4,
            "probe_every": 5,
            "batch_size": 64,
            "options": opts,
        }
    )
    rec = Recorder()
    r = Trainer(spec, data_dir=Path(tempfile.gettempdir()) / "skipweb-bench-data", sinks=[rec]).run()

    def summ(p):
        ratio = np.array(p.skip_grad) / np.array(p.branch_grad)
        g = np.array(p.gate)
        return (
            f"ratio median {np.nanmedian(ratio):.2f} first {ratio[0]:.2f} last {ratio[-1]:.2f} min {np.nanmin(ratio):.2f} max {np.nanmax(ratio):.2f} dead {np.mean(p.act_dead):.3f}"
            + (f" gate {np.nanmean(g):.3f}" if np.isfinite(g).any() else "")
        )

    print(spec.label, opts, r.status, f"test err {r.final.get('test/error', float('nan')):.3f}")
    print("   init :", summ(rec.probes[0]))
    print("   final:", summ(rec.probes[-1]), "step", rec.probes[-1].step)
