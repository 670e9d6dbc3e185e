"""Database throughput through the app's own queries, on SQLite and PostgreSQL (issue 3's targets).

1. ingest: metric rows/s written by ``db.metrics.write_batch`` — per flush of one probe interval
   (10 steps × 3 keys + 1 probe step, as the trainer writes) and per large batch (1,000 rows);
   target ≥ 50k rows/s batched.
2. compare load: everything Compare needs for 20 runs × 200 epochs × 56 probe layers — the epoch-level
   metrics and each run's 2,000 × 56 gradient matrix and probe layers; target < 0.5 s.
3. run list: ``list_runs`` of 1,000 runs with their latest metrics; target < 0.3 s.
Synthetic values, real schema and queries. Usage: .venv/bin/python bench/db_ingest.py
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid

from sqlalchemy import create_engine

from db import experiments, metrics, migrate, runs
from db.session import get_engine

EPOCH_KEYS = ("epoch/train_loss", "epoch/train_error", "val/loss", "val/error", "test/loss", "test/error")


def spec_row(i: int) -> dict:
    spec = {"family": "resnet", "depth": 56, "dataset": "digits", "seed": i}
    return {"spec": spec, "config_hash": f"h{i:08d}", "label": f"resnet-56 #{i}", "family": "resnet",
            "depth": 56, "dataset": "digits", "seed": i}


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench(url: str, name: str) -> None:
    migrate.upgrade(url)
    eng = get_engine(url)
    exp = experiments.create_experiment(eng, "bench")
    ids = runs.add_runs(eng, exp, [spec_row(i) for i in range(1000)])

    # 1. ingest
    run = ids[0]
    flushes = [([("train/loss", s, s / 100, random.random(), 0.0) for s in range(f * 10, f * 10 + 10)]
                + [("train/error", s, s / 100, random.random(), 0.0) for s in range(f * 10, f * 10 + 10)]
                + [("lr", s, s / 100, 0.1, 0.0) for s in range(f * 10, f * 10 + 10)],
                [(f * 10, f / 10, [1.0] * 56, [2.0] * 56, [0.01] * 56)]) for f in range(300)]
    t = timed(lambda: [metrics.write_batch(eng, run, m, p) for m, p in flushes])
    per_flush = 300 * 30 / t
    big = [("train/loss", s, s / 100, random.random(), 0.0) for s in range(100_000, 200_000)]

    def batched(run_id: int) -> float:
        return len(big) / timed(lambda: [metrics.write_batch(eng, run_id, big[i:i + 1000])
                                         for i in range(0, len(big), 1000)])  # fmt: skip

    per_big = batched(ids[1])
    replay = batched(ids[1])  # every row already there: the idempotent replace path
    line = (f"{name:10s} ingest: {per_flush:9,.0f} rows/s per probe-interval flush (31 rows/transaction), "
            f"{per_big:9,.0f} rows/s in 1,000-row batches, {replay:9,.0f} replayed  (target ≥ 50,000 batched)")
    if name == "postgresql":  # the baseline in the same process: SQLAlchemy's multi-row VALUES executemany
        array_min, metrics.ARRAY_MIN_ROWS = metrics.ARRAY_MIN_ROWS, 10**9
        base = batched(ids[2])
        metrics.ARRAY_MIN_ROWS = array_min
        line += f"; executemany {base:,.0f} rows/s: arrays are {per_big / base:.1f}×"
    print(line)

    # 2. a comparison: 20 runs × 200 epochs of epoch metrics + 2,000 probe steps × 56 layers
    cmp_ids = ids[2:22]
    for r in cmp_ids:
        rows = [(k, e * 391, float(e), random.random(), e * 10.0) for e in range(1, 201) for k in EPOCH_KEYS]
        probes = [(s, s / 391, [random.random()] * 56, [1.0] * 56, [0.01] * 56) for s in range(0, 20_000, 10)]
        metrics.write_batch(eng, r, rows, probes)
        runs.set_info(eng, r, params=853018, flops=1, device="cpu", torch_version="x", total_steps=78200,
                      probe_layers=[{"idx": i, "name": f"l{i}", "skip": i % 2 == 1, "params": 10} for i in range(56)])

    def load() -> None:
        metrics.read_metrics(eng, cmp_ids, keys=list(EPOCH_KEYS))
        metrics.read_grad(eng, cmp_ids)
        metrics.read_probe_layers(eng, cmp_ids)

    load()
    t_cmp = min(timed(load) for _ in range(3))
    print(f"{name:10s} compare load (20 runs × 200 epochs × 56 layers): {t_cmp * 1000:7.1f} ms  (target < 500 ms)")

    # 3. list 1,000 runs with latest metrics
    for r in ids[22:1000]:
        metrics.write_batch(eng, r, [(k, 1, 1.0, random.random(), 1.0) for k in EPOCH_KEYS])
    runs.list_runs(eng, limit=1000)
    t_list = min(timed(lambda: runs.list_runs(eng, limit=1000)) for _ in range(3))
    print(f"{name:10s} list 1,000 runs with latest metrics: {t_list * 1000:7.1f} ms  (target < 300 ms)")

    # 4. the Runs page's server-side work for 1,000 runs: the query plus its table rows
    from skipweb.ui.runs import run_rows

    t_page = min(timed(lambda: run_rows(runs.list_runs(eng, limit=1000))) for _ in range(3))
    print(f"{name:10s} Runs page data for 1,000 runs (query + table): {t_page * 1000:7.1f} ms  (target < 500 ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench(f"sqlite:///{tmp}/bench.db", "sqlite")
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    name = f"skipweb_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except Exception as e:
        print(f"postgresql skipped: {type(e).__name__}: {str(e).splitlines()[0]}")
        return
    try:
        bench(admin.url.set(database=name).render_as_string(hide_password=False), "postgresql")
    finally:
        from db.session import dispose_engine

        dispose_engine(admin.url.set(database=name).render_as_string(hide_password=False))
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
