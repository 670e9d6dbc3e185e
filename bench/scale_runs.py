"""10,000 runs in 50 experiments (issue 13): the Runs page's data and `skipweb status` stay under 0.5 s.

SYNTHETIC rows (no training): 50 experiments × 200 runs with a spec, a status mix and four latest
metrics each, written with the app's own db.runs.add_runs and db.metrics.write_batch. Timed with the
functions the page and the CLI call:
  page, all        experiments with their status counts + the newest page of runs + the page's table
  page, one exp    the same for one experiment (200 runs)
  page, filtered   status=failed across all experiments
  skipweb status   the console command, a fresh process (Python start-up included), wall time

Usage:  python bench/scale_runs.py [--pg URL] [--sqlite-only]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, update

RUNS, EXPS = 10_000, 50
STATUSES = ("succeeded",) * 7 + ("failed", "cancelled", "queued")


def populate(url: str) -> None:
    from db import experiments, metrics, migrate, runs
    from db.session import scope
    from db.tables import SqlRun

    migrate.upgrade(url)
    per = RUNS // EXPS
    for e in range(EXPS):
        exp = experiments.create_experiment(url, f"bench sweep {e}", tags=["bench"])
        specs = [{"spec": {"family": "resnet", "depth": 20 + 6 * (i % 10), "seed": i // 10, "dataset": "digits",
                           "epochs": 10}, "config_hash": f"e{e}r{i}", "label": f"resnet-{20 + 6 * (i % 10)}",
                  "family": "resnet", "depth": 20 + 6 * (i % 10), "dataset": "digits", "seed": i // 10}
                 for i in range(per)]  # fmt: skip
        ids = runs.add_runs(url, exp, specs, checkpoint_dir=Path(tempfile.gettempdir()))
        for k, rid in enumerate(ids):
            metrics.write_batch(url, rid, [(key, 100, 10.0, 0.1 + 0.001 * k, 50.0) for key in
                                           ("test/error", "val/error", "epoch/train_error", "train/loss")])  # fmt: skip
        with scope(url) as s:
            for k, rid in enumerate(ids):
                s.execute(update(SqlRun).where(SqlRun.id == rid).values(
                    status=STATUSES[k % len(STATUSES)], steps_done=100, total_steps=100, epochs_done=10))  # fmt: skip


def best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench(url: str, name: str) -> None:
    from db import experiments
    from db.run_queries import count_runs, list_runs
    from skipweb.ui.runs import PAGE_SIZE, run_rows

    t = time.perf_counter()
    populate(url)
    print(f"{name}: {RUNS:,} runs in {EXPS} experiments written in {time.perf_counter() - t:.0f} s")
    exp_id = experiments.list_experiments(url)[EXPS // 2].id

    def page(**filters):
        exps = experiments.list_experiments(url)
        total = count_runs(url, **filters)
        rows = run_rows(list_runs(url, limit=PAGE_SIZE, offset=0, **filters))
        return exps, total, rows

    for label, filters in (("page, all", {}), ("page, one exp", {"experiment_id": exp_id}),
                           ("page, failed", {"status": "failed"}), ("page, last page", None)):  # fmt: skip
        if filters is None:  # the oldest runs: the OFFSET end of the listing
            secs = best(lambda: run_rows(list_runs(url, limit=PAGE_SIZE, offset=RUNS - PAGE_SIZE)))
        else:
            secs = best(lambda f=filters: page(**f))
        print(f"  {label:<16} {secs * 1000:8.1f} ms  (target < 500 ms)")
    env = {**os.environ, "SKIPWEB_DATABASE_URL": url, "SKIPWEB_DATA_DIR": tempfile.mkdtemp()}
    walls = []
    for _ in range(5):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "skipweb", "status"], env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - t)
        assert out.returncode == 0, out.stderr
    print(f"  {'skipweb status':<16} {statistics.median(walls) * 1000:8.1f} ms  median of 5 fresh processes "
          f"(target < 500 ms); it prints: {out.stdout.strip().splitlines()[-1][:40]}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--sqlite-only", action="store_true")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    bench(f"sqlite:///{Path(tempfile.mkdtemp()) / 'skipweb.db'}", "sqlite")
    if args.sqlite_only:
        return
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    name = f"skipweb_scale_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        bench(url, "postgresql")
    finally:
        from db.session import dispose_engine

        dispose_engine(url)
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
