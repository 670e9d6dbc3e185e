"""Do the default recipes train? Every family at the shallowest and deepest depth the Launch page offers
(its example depths), on the bundled data, 3 seeds each, with nothing but the dataset's default recipe
(skipweb.recipes). Prints one markdown row per configuration: final train/test error, mean ± std over
seeds, the chance level and the CPU time.

    python bench/recipes.py                       # every family (about an hour of CPU on 2 cores)
    python bench/recipes.py --family resnet --jobs 2
    python bench/recipes.py --family unet --family torchvision --depth 2 --depth 4 --depth 121

A row passes when every seed ends well above chance: train error below half the chance error (0.45 on
digits' 10 classes, 0.33 on shapes-cls' 3) or, for segmentation, mean IoU above twice 1/classes (0.5 on
shapes, above the 0.40 that finding every shape but guessing its kind earns: evaluate.figure_ground_miou).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

GRID = {  # family: (dataset, shallowest and deepest example depth)
    "plain": ("digits", (20, 110)),
    "resnet": ("digits", (20, 110)),
    "highway": ("digits", (20, 110)),
    "densenet": ("digits", (22, 100)),
    "mlp": ("digits", (4, 64)),
    "torchvision": ("digits", (18, 121)),
    "unet": ("shapes", (2, 4)),
}
EXTRA = [("resnet", "shapes-cls", 20), ("resnet", "shapes-cls", 56), ("densenet", "shapes-cls", 22),
         ("densenet", "shapes-cls", 40)]  # the DenseNet story's data  # fmt: skip


def _init() -> None:
    import torch

    torch.set_num_threads(1)


def one(args: tuple[str, str, int, int, str]) -> dict:
    from skipweb.spec import RunSpec
    from skipweb.training.sinks import Recorder
    from skipweb.training.trainer import Trainer

    family, dataset, depth, seed, data_dir = args
    spec = RunSpec(family=family, depth=depth, dataset=dataset, seed=seed, device="cpu")
    rec, t0 = Recorder(), time.process_time()
    Trainer(spec, data_dir=Path(data_dir), sinks=[rec]).run()
    last = rec.epochs[-1] if rec.epochs else {}
    return {"family": family, "dataset": dataset, "depth": depth, "seed": seed, "status": rec.result.status,
            "train": last.get("epoch/train_error", float("nan")), "test": last.get("test/error", float("nan")),
            "miou": last.get("test/miou"), "cpu_s": time.process_time() - t0,
            "recipe": f"bs {spec.batch_size}, lr {spec.lr:g}, warm-up {spec.warmup_epochs:g}, {spec.epochs} ep"}  # fmt: skip


def ms(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.fmean(xs):.3f} ± {sd:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", action="append", help="only these families (repeatable)")
    ap.add_argument("--depth", type=int, action="append", help="only these depths (repeatable)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--extra", action="store_true", help="also the DenseNet story's shapes-cls configurations")
    ap.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1)))
    ap.add_argument("--data-dir", default=os.environ.get("SKIPWEB_DATA_DIR", ".skipweb") + "/datasets")
    a = ap.parse_args()
    from skipweb.data import get_dataset_info

    configs = [(f, ds, d) for f, (ds, depths) in GRID.items() for d in depths] + (EXTRA if a.extra else [])
    configs = [c for c in configs if (not a.family or c[0] in a.family) and (not a.depth or c[2] in a.depth)]
    work = [(f, ds, d, s, a.data_dir) for f, ds, d in configs for s in range(a.seeds)]
    print(f"{len(work)} runs, {a.jobs} processes × 1 thread; load {os.getloadavg()[0]:.2f}", flush=True)
    results = []
    with ProcessPoolExecutor(a.jobs, initializer=_init) as pool:
        for fut in as_completed([pool.submit(one, w) for w in work]):
            r = fut.result()
            results.append(r)
            miou = f", test mIoU {r['miou']:.3f}" if r["miou"] is not None else ""
            print(f"  {r['family']}-{r['depth']} {r['dataset']} seed {r['seed']}: {r['status']}, train error "
                  f"{r['train']:.3f}, test error {r['test']:.3f}{miou}, {r['cpu_s']:.0f} CPU s", flush=True)  # fmt: skip
    print("\n| family | depth | dataset | recipe | train error | test error (mIoU) | chance error | CPU s/run | ok |")
    print("|---|---|---|---|---|---|---|---|---|")
    for f, ds, d in configs:
        rs = [r for r in results if (r["family"], r["dataset"], r["depth"]) == (f, ds, d)]
        info = get_dataset_info(ds)
        chance = 1 - 1 / info.num_classes
        if info.task == "segmentation":
            ious = [r["miou"] for r in rs]
            ok = all(x is not None and x > 2 / info.num_classes for x in ious)
            test = f"mIoU {ms(ious)}"
        else:
            ok = all(r["train"] < chance / 2 for r in rs)
            test = ms([r["test"] for r in rs])
        print(f"| {f} | {d} | {ds} | {rs[0]['recipe']} | {ms([r['train'] for r in rs])} | {test} | {chance:.2f} | "
              f"{statistics.fmean(r['cpu_s'] for r in rs):.0f} | {'yes' if ok else 'NO'} |", flush=True)  # fmt: skip
    print(f"\nload after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
