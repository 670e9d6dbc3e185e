"""Which storage shape for per-layer probe statistics? Measure, don't guess.

Shape (a) "long": one row per (run, step, layer) with grad_norm, weight_norm, update_ratio.
Shape (b) "packed": one row per (run, step) holding three little-endian float32 arrays (one per stat).

For each backend we write ``--steps`` probe steps × ``--layers`` layers (default: 200 epochs of a
ResNet-56 on CIFAR probed every 10 steps ≈ 2,000 steps × 57 layers), one transaction per probe
interval (``--batch`` probe steps, default 1: the trainer flushes once per probe interval), with the
idempotent upsert the app uses; then replay every step (all conflicts), read back the run's full
(step × layer) matrix of one stat, and one step's column.

Usage:  python bench/db_storage.py [--pg postgresql+psycopg://postgres@127.0.0.1/test] [--steps 2000]
The tables live in a throwaway SQLite file and a throwaway PostgreSQL database (created and dropped).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable

import numpy as np
from sqlalchemy import Column, Float, Integer, LargeBinary, MetaData, Table, create_engine, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

STATS = ("grad_norm", "weight_norm", "update_ratio")
meta = MetaData()
long_t = Table(
    "probe_long",
    meta,
    Column("run_id", Integer, primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("layer", Integer, primary_key=True),
    *(Column(s, Float) for s in STATS),
)
packed_t = Table(
    "probe_packed",
    meta,
    Column("run_id", Integer, primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("epoch", Float),
    *(Column(s, LargeBinary) for s in STATS),
)


def upsert(engine: Engine, table: Table, rows: list[dict]) -> None:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    keys = {c.name for c in table.primary_key.columns}
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: stmt.excluded[c] for c in rows[0] if c not in keys}
    )
    with engine.begin() as conn:
        conn.execute(stmt, rows)


def write_long(engine: Engine, data: np.ndarray, batch: int) -> None:
    steps, layers, _ = data.shape
    for start in range(0, steps, batch):
        rows = [
            {
                "run_id": 1,
                "step": s * 10,
                "layer": j,
                **{k: float(data[s, j, i]) for i, k in enumerate(STATS)},
            }
            for s in range(start, min(start + batch, steps))
            for j in range(layers)
        ]
        upsert(engine, long_t, rows)


def write_packed(engine: Engine, data: np.ndarray, batch: int) -> None:
    steps = data.shape[0]
    for start in range(0, steps, batch):
        rows = [
            {
                "run_id": 1,
                "step": s * 10,
                "epoch": s / 10,
                **{k: data[s, :, i].astype("<f4").tobytes() for i, k in enumerate(STATS)},
            }
            for s in range(start, min(start + batch, steps))
        ]
        upsert(engine, packed_t, rows)


def read_long_matrix(engine: Engine) -> np.ndarray:
    with engine.connect() as conn:
        rows = conn.execute(
            select(long_t.c.step, long_t.c.layer, long_t.c.grad_norm)
            .where(long_t.c.run_id == 1)
            .order_by(long_t.c.step, long_t.c.layer)
        ).all()
    # np.array() over Row objects takes a slow generic path (seconds); go through plain columns.
    values = np.fromiter((r[2] for r in rows), dtype=np.float64, count=len(rows))
    n_steps = len({r[0] for r in rows})
    return values.reshape(n_steps, len(rows) // n_steps)


def read_packed_matrix(engine: Engine) -> np.ndarray:
    with engine.connect() as conn:
        rows = conn.execute(
            select(packed_t.c.step, packed_t.c.grad_norm)
            .where(packed_t.c.run_id == 1)
            .order_by(packed_t.c.step)
        ).all()
    return np.stack([np.frombuffer(b, dtype="<f4") for _, b in rows])


def read_long_step(engine: Engine, step: int) -> np.ndarray:
    with engine.connect() as conn:
        rows = conn.execute(
            select(long_t.c.grad_norm)
            .where(long_t.c.run_id == 1, long_t.c.step == step)
            .order_by(long_t.c.layer)
        ).scalars()
        return np.fromiter(rows, dtype=np.float64)


def read_packed_step(engine: Engine, step: int) -> np.ndarray:
    with engine.connect() as conn:
        blob = conn.execute(
            select(packed_t.c.grad_norm).where(packed_t.c.run_id == 1, packed_t.c.step == step)
        ).scalar_one()
    return np.frombuffer(blob, dtype="<f4")


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def size_of(engine: Engine, table: Table) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            n = conn.execute(text(f"select pg_total_relation_size('{table.name}')")).scalar_one()
        else:
            n = conn.execute(
                text(f"select sum(pgsize) from dbstat where name like '%{table.name}%'")
            ).scalar()
    return f"{n / 2**20:.1f} MiB" if n else "n/a"


def bench(engine: Engine, name: str, data: np.ndarray, batch: int) -> None:
    meta.create_all(engine)
    step = int(data.shape[0] // 2) * 10
    res = {}
    for shape, write, read_m, read_s, table in (
        ("long", write_long, read_long_matrix, read_long_step, long_t),
        ("packed", write_packed, read_packed_matrix, read_packed_step, packed_t),
    ):
        w = timed(lambda write=write: write(engine, data, batch))
        again = timed(lambda write=write: write(engine, data, batch))  # replay: every row conflicts
        m = timed(lambda read_m=read_m: read_m(engine), repeat=3)
        s = timed(lambda read_s=read_s: read_s(engine, step), repeat=20)
        assert np.allclose(read_m(engine), data[:, :, 0].astype("<f4"), rtol=1e-6)
        assert np.allclose(read_s(engine, step), data[step // 10, :, 0].astype("<f4"), rtol=1e-6)
        res[shape] = (w, again, m, s)
        print(
            f"{name:10} {shape:7} write {w:7.2f} s  replay {again:7.2f} s  matrix {m * 1e3:8.1f} ms  "
            f"step {s * 1e3:6.2f} ms  size {size_of(engine, table)}"
        )
    (lw, la, lm, ls), (pw, pa, pm, ps) = res["long"], res["packed"]
    print(
        f"{name:10} long/packed: write ×{lw / pw:.0f}  replay ×{la / pa:.0f}  matrix ×{lm / pm:.0f}  "
        f"step ×{ls / ps:.1f}"
    )
    meta.drop_all(engine)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--layers", type=int, default=57)
    ap.add_argument("--batch", type=int, default=1, help="probe steps per transaction (a flush holds one)")
    ap.add_argument(
        "--pg", default=os.environ.get("SKIPWEB_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1/test")
    )
    args = ap.parse_args()
    data = np.random.default_rng(0).lognormal(size=(args.steps, args.layers, 3)).astype(np.float32)
    print(f"{args.steps} probe steps × {args.layers} layers, {args.batch} steps per transaction")
    with tempfile.TemporaryDirectory() as tmp:
        eng = create_engine(f"sqlite:///{tmp}/bench.db")
        with eng.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
        bench(eng, "sqlite", data, args.batch)
        eng.dispose()
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    name = f"skipweb_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except Exception as e:  # report and carry on with the SQLite figures only
        print(f"postgresql skipped: {e.__class__.__name__}: {str(e).splitlines()[0]}")
        return
    try:
        eng = create_engine(admin.url.set(database=name))
        bench(eng, "postgresql", data, args.batch)
        eng.dispose()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")


if __name__ == "__main__":
    main()
