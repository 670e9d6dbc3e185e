"""Server-side time to build the Compare page's data and figures (no browser, no Streamlit runtime).

SYNTHETIC DATA: rows are written straight into a throwaway SQLite database with db.metrics.write_batch
(no training), shaped like a real sweep: ``--runs`` runs (plain/resnet × depths × seeds) of ``--epochs``
epochs at ``--steps-per-epoch`` optimizer steps, per-step train/loss and train/error, per-epoch
val/test/train metrics, and gradient probes every ``--probe-every`` steps over ``--layers`` layers.

Timed with the same functions the page calls (skipweb.ui.compare / data / charts), cold (caches
cleared) and warm (st.cache_data hit, what a slider-triggered rerun costs):
  default  test/error curves vs step + 4 heatmaps + gradient vs depth + degradation + params + table
  all-heat heatmaps of all runs side by side
  per-step train/loss curves of all runs (downsampled to 2,000 points each for display)
  folded   the per-step curves folded over seeds (mean ± std)

Usage:  python bench/ui_pages.py [--runs 20 --epochs 200 --steps-per-epoch 100 --layers 56]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

logging.disable(logging.WARNING)  # "No runtime found" from st.cache_data outside a server


def synthesize(url: str, args: argparse.Namespace) -> list[int]:
    from db import experiments, metrics, migrate, runs

    migrate.upgrade(url)
    exp = experiments.create_experiment(url, "bench: synthetic sweep")
    combos = [
        (f, d, s) for s, f, d in itertools.product(range(10), ("plain", "resnet"), (20, 32, 44, 56, 110))
    ]
    combos = combos[: args.runs]  # 20 runs: 10 configurations × 2 seeds
    rows = []
    for fam, depth, seed in combos:
        spec = {
            "family": fam,
            "depth": depth,
            "dataset": "cifar10",
            "seed": seed,
            "epochs": args.epochs,
            "batch_size": 128,
        }
        rows.append(
            {
                "spec": spec,
                "config_hash": f"{fam}{depth}s{seed}",
                "label": f"{fam}-{depth}",
                "family": fam,
                "depth": depth,
                "dataset": "cifar10",
                "seed": seed,
            }
        )
    ids = runs.add_runs(url, exp, rows, checkpoint_dir=Path(tempfile.gettempdir()))
    rng = np.random.default_rng(0)
    n_steps = args.epochs * args.steps_per_epoch
    steps = np.arange(1, n_steps + 1)
    for rid, (fam, depth, _seed) in zip(ids, combos, strict=True):
        runs.claim(url, rid, "bench")
        layers = [
            {"idx": i, "name": f"layer{i}", "skip": fam == "resnet" and i % 2 == 1, "params": 1000}
            for i in range(args.layers)
        ]
        runs.set_info(
            url,
            rid,
            params=depth * 15_000,
            flops=depth * 2_000_000,
            device="cpu",
            torch_version="synthetic",
            total_steps=n_steps,
            probe_layers=layers,
        )
        floor = 0.05 + (0.002 * depth if fam == "plain" else 0.0)
        loss = 2.3 * np.exp(-steps / (n_steps / 5)) + floor + 0.05 * rng.standard_normal(n_steps)
        wall = steps * 0.05
        pts = [
            ("train/loss", s, s / args.steps_per_epoch, v, w)
            for s, v, w in zip(steps, loss, wall, strict=True)
        ]
        pts += [
            ("train/error", s, s / args.steps_per_epoch, v / 3, w)
            for s, v, w in zip(steps, loss, wall, strict=True)
        ]
        pts += [
            ("samples_per_s", s, s / args.steps_per_epoch, 2500.0 + rng.normal(0, 50), w)
            for s, w in zip(steps, wall, strict=True)
        ]
        for e in range(1, args.epochs + 1):
            s = e * args.steps_per_epoch
            err = float(np.clip(loss[s - 1] / 3, 0, 1))
            pts += [
                (k, s, float(e), err * f, s * 0.05)
                for k, f in (
                    ("test/error", 1.1),
                    ("val/error", 1.05),
                    ("epoch/train_error", 1.0),
                    ("epoch/train_loss", 3.0),
                )
            ]
        pstep = steps[:: args.probe_every]
        depth_decay = np.exp(-np.arange(args.layers) / (6 if fam == "plain" else 60))[::-1]
        probes = [
            (
                int(s),
                s / args.steps_per_epoch,
                depth_decay * 10 ** rng.uniform(-3, -1),
                np.ones(args.layers),
                np.full(args.layers, 1e-3),
            )
            for s in pstep
        ]
        metrics.write_batch(url, rid, pts, probes)
        runs.finish(url, rid, "bench", "succeeded")
    return ids


def timed(fn, repeat: int) -> tuple[float, object]:
    import streamlit as st

    best, out = float("inf"), None
    for _ in range(repeat):
        st.cache_data.clear()
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    t = time.perf_counter()
    fn()  # caches are warm now
    return best, (time.perf_counter() - t, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--steps-per-epoch", type=int, default=100)
    ap.add_argument("--probe-every", type=int, default=10)
    ap.add_argument("--layers", type=int, default=56)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="skipweb-bench-")
    os.environ["SKIPWEB_DATA_DIR"] = tmp
    os.environ.pop("SKIPWEB_DATABASE_URL", None)
    from skipweb import charts
    from skipweb.charts import runs as charts_runs
    from skipweb.ui import data
    from skipweb.ui import selection as compare

    url = f"sqlite:///{Path(tmp) / 'skipweb.db'}"
    t = time.perf_counter()
    ids = synthesize(url, args)
    print(
        f"SYNTHETIC data: {args.runs} runs × {args.epochs} epochs × {args.steps_per_epoch} steps/epoch, "
        f"probes every {args.probe_every} steps × {args.layers} layers; written in {time.perf_counter() - t:.1f} s"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, SQLite"
    )

    def runs():
        return data.experiment_runs(url, 1)

    def default_view():
        rs = runs()
        figs = [compare.curve_figure(url, rs, "test/error", "step", 0.6, False, False)]
        grads, layers = compare.grad_data(url, rs)
        names = list(grads)
        figs.append(charts.grad_heatmaps({n: grads[n] for n in names[:4]}, layers))
        figs.append(charts.grad_vs_depth(grads, max(int(s[-1]) for s, _ in grads.values())))
        latest = data.latest_values(url, data.ids(ids))
        rows = compare.final_rows(rs, latest, "test/error")
        figs += [charts_runs.final_error_vs_depth(rows), charts_runs.error_vs_params(rows)]
        return figs, compare.table(url, rs)

    def all_heat():
        grads, layers = compare.grad_data(url, runs())
        return charts.grad_heatmaps(grads, layers)

    def per_step():
        return compare.curve_figure(url, runs(), "train/loss", "step", 0.6, True, False)

    def folded():
        return compare.curve_figure(url, runs(), "train/loss", "wall", 0.6, False, True)

    print(f"{'view':<10} {'cold (best of ' + str(args.repeat) + ')':>20} {'warm rerun':>12}  drawn")
    for name, fn in [
        ("default", default_view),
        ("all-heat", all_heat),
        ("per-step", per_step),
        ("folded", folded),
    ]:
        cold, (warm, out) = timed(fn, args.repeat)
        fig = out[0][0] if name == "default" else out
        points = sum(
            len(tr.x) for tr in fig.data if getattr(tr, "x", None) is not None and tr.type == "scatter"
        )
        extra = f"{points} curve points" if name != "all-heat" else f"{len(fig.data)} traces"
        print(f"{name:<10} {cold * 1000:>17.0f} ms {warm * 1000:>9.0f} ms  {extra}")
    html = time.perf_counter()
    size = len(per_step().to_html(include_plotlyjs=True))
    print(
        f"HTML export of the per-step figure: {(time.perf_counter() - html) * 1000:.0f} ms, {size / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
