"""Metric and probe store: idempotent batches, NaN/inf, latest values, read shapes, fencing, DbSink.
Runs on SQLite and PostgreSQL (conftest.db_url)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from db import experiments, metrics, runs
from db.session import session_scope
from db.tables import SqlLatestMetric, SqlMetric, SqlProbeLayer, SqlProbeStep, SqlRun


def new_run(url: str, claim: bool = True) -> int:
    exp = experiments.create_experiment(url, "metrics")
    entry = {
        "spec": {},
        "config_hash": "h",
        "label": "mlp-4",
        "family": "mlp",
        "depth": 4,
        "dataset": "digits",
        "seed": 1,
    }
    (run_id,) = runs.add_runs(url, exp, [entry], checkpoint_dir=Path("/ckpt"))
    if claim:
        assert runs.claim(url, run_id, "w")
    return run_id


def count(url: str, table: type) -> int:
    with session_scope(url, read_only=True) as s:
        return s.scalar(select(func.count()).select_from(table))


def probe(step: int, layers: int = 7, scale: float = 1.0) -> tuple:
    g = np.arange(layers, dtype=np.float32) * scale + step
    return (step, step / 100, g, g * 2, g / 10)


def test_replayed_steps_replace(db_url: str) -> None:
    run_id = new_run(db_url)
    batch = [("train/loss", s, s / 100, 1.0 / (s + 1), s * 0.5) for s in range(10)]
    assert metrics.write_batch(db_url, run_id, batch, [probe(s) for s in (0, 5)])
    replay = [("train/loss", s, s / 100, 100.0 + s, s * 0.5) for s in range(5, 10)]
    metrics.write_batch(db_url, run_id, replay + replay, [probe(5, scale=3.0)])  # duplicates in one batch too
    df = metrics.read_metrics(db_url, [run_id])
    assert len(df) == 10 == count(db_url, SqlMetric)
    assert df["value"].tolist() == [1.0 / (s + 1) for s in range(5)] + [100.0 + s for s in range(5, 10)]
    steps, mat = metrics.read_grad(db_url, [run_id])[run_id]
    assert steps.tolist() == [0, 5] and np.allclose(mat[1], np.arange(7) * 3.0 + 5)
    assert count(db_url, SqlProbeStep) == 2


def test_large_batches_keep_the_same_semantics(db_url: str) -> None:
    """Large batches (PostgreSQL: one unnest of binary arrays): replays still replace, NaN and ±inf
    survive, nothing is duplicated, and a batch after a lost lease writes nothing."""
    run_id = new_run(db_url)
    n = 600
    values = [math.nan, math.inf, -math.inf] + [float(s) for s in range(3, n)]
    assert metrics.write_batch(db_url, run_id, [("train/loss", s, s / 100, v, 0.5) for s, v in enumerate(values)], owner="w")
    replay = [("train/loss", s, s / 100, -float(s), 0.5) for s in range(n // 2, n + n // 2)]
    assert metrics.write_batch(db_url, run_id, replay + replay[:10], owner="w")
    got = metrics.read_metrics(db_url, [run_id])
    assert len(got) == count(db_url, SqlMetric) == n + n // 2
    v = got["value"].tolist()
    assert math.isnan(v[0]) and v[1:3] == [math.inf, -math.inf] and v[3 : n // 2] == values[3 : n // 2]
    assert v[n // 2 :] == [-float(s) for s in range(n // 2, n + n // 2)]
    assert metrics.latest(db_url, [run_id])[run_id]["train/loss"] == -float(n + n // 2 - 1)
    assert runs.claim(db_url, new_run(db_url, claim=False), "w")  # another run, same owner: no effect here
    with session_scope(db_url) as s:  # the lease moves to another worker
        s.execute(SqlRun.__table__.update().where(SqlRun.id == run_id).values(lease_owner="other"))
    late = [("train/loss", s, s / 100, 7.0, 0.5) for s in range(n)]
    assert not metrics.write_batch(db_url, run_id, late, owner="w")
    assert metrics.read_metrics(db_url, [run_id])["value"].tolist()[3:5] == [3.0, 4.0]


def test_a_bad_batch_fails_whole_with_sqlalchemys_error(db_url: str) -> None:
    """A key longer than the column's 128 characters is refused (PostgreSQL) or kept whole (SQLite), never
    cut short so that two keys merge; a step out of PostgreSQL's integer range fails. Either way the error is
    SQLAlchemy's (db.retry tells transient ones by their class) and the batch writes nothing."""
    from sqlalchemy.exc import DBAPIError

    run_id = new_run(db_url)
    long_keys = [("k" * 128 + tail, 1, 0.0, v, 0.0) for tail, v in (("X", 1.0), ("Y", 2.0))]
    if db_url.startswith("postgresql"):
        for key in long_keys:  # one at a time: truncated, each would be written, the second over the first
            with pytest.raises(DBAPIError):
                metrics.write_batch(db_url, run_id, [key], owner="w")
        with pytest.raises(DBAPIError):
            metrics.write_batch(db_url, run_id, [("ok", 1, 0.0, 1.0, 0.0), ("ok", 2**31, 0.0, 1.0, 0.0)], owner="w")
        assert count(db_url, SqlMetric) == count(db_url, SqlLatestMetric) == 0
    else:
        assert metrics.write_batch(db_url, run_id, long_keys, owner="w")
        assert sorted(metrics.read_metrics(db_url, [run_id])["key"].str.len()) == [129, 129]


def test_latest_moves_forward_only(db_url: str) -> None:
    run_id = new_run(db_url)
    metrics.write_batch(
        db_url, run_id, [("val/error", 100, 1.0, 0.30, 9.0), ("val/error", 200, 2.0, 0.20, 19.0)]
    )
    metrics.write_batch(db_url, run_id, [("val/error", 150, 1.5, 0.99, 14.0), ("lr", 150, 1.5, 0.1, 14.0)])
    assert metrics.latest(db_url, [run_id]) == {run_id: {"val/error": 0.20, "lr": 0.1}}
    metrics.write_batch(db_url, run_id, [("val/error", 200, 2.0, 0.25, 19.5)])  # replay of the newest step
    assert runs.get_run(db_url, run_id).latest["val/error"] == 0.25
    assert runs.list_runs(db_url)[0].as_row()["val/error"] == 0.25
    assert count(db_url, SqlLatestMetric) == 2


def test_nan_and_inf_round_trip(db_url: str) -> None:
    run_id = new_run(db_url)
    values = [math.nan, math.inf, -math.inf, 0.0, -1.5e-300, 1e300]
    metrics.write_batch(db_url, run_id, [("train/loss", i, 0.0, v, 0.0) for i, v in enumerate(values)])
    metrics.write_batch(db_url, run_id, [("train/loss", 9, 0.1, math.nan, 1.0)])
    got = metrics.read_metrics(db_url, [run_id], keys=["train/loss"])["value"].tolist()
    assert math.isnan(got[0]) and got[1:6] == values[1:] and math.isnan(got[6])
    assert math.isnan(metrics.latest(db_url, [run_id])[run_id]["train/loss"])
    metrics.write_batch(db_url, run_id, probes=[(0, 0.0, [math.nan, math.inf], [1, -math.inf], [0, 0])])
    _, mat = metrics.read_grad(db_url, [run_id], "weight_norm")[run_id]
    assert mat[0, 0] == 1 and mat[0, 1] == -np.inf
    _, mat = metrics.read_grad(db_url, [run_id])[run_id]
    assert np.isnan(mat[0, 0]) and mat[0, 1] == np.inf


def test_read_shapes(db_url: str) -> None:
    a, b = new_run(db_url), new_run(db_url)
    for run_id in (a, b):
        pts = [(k, s, s / 10, float(s), s * 0.1) for k in ("train/loss", "lr") for s in range(0, 50, 10)]
        metrics.write_batch(db_url, run_id, pts, [probe(s) for s in range(0, 50, 10)])
    df = metrics.read_metrics(db_url, [a, b])
    assert list(df.columns) == ["run_id", "key", "step", "epoch", "value", "wall"] and len(df) == 20
    assert df.dtypes["step"] == np.int64 and df.dtypes["value"] == np.float64
    assert df[["run_id", "key", "step"]].equals(
        df[["run_id", "key", "step"]].sort_values(["run_id", "key", "step"])
    )
    assert len(metrics.read_metrics(db_url, [a], keys=["lr"], after_step=20)) == 2
    empty = metrics.read_metrics(db_url, [999])
    assert empty.empty and list(empty.columns) == list(df.columns)
    grads = metrics.read_grad(db_url, [a, b, 999], stat="update_ratio")
    steps, mat = grads[a]
    assert steps.tolist() == [0, 10, 20, 30, 40] and mat.shape == (5, 7) and mat.dtype == np.float32
    assert grads[999][0].size == 0 and grads[999][1].shape == (0, 0)
    steps, mat = metrics.read_grad(db_url, [b], steps=[30])[b]  # one step's column over the layers
    assert steps.tolist() == [30] and np.allclose(mat[0], np.arange(7) + 30)
    with pytest.raises(ValueError, match="stat must be one of"):
        metrics.read_grad(db_url, [a], stat="hessian")


def test_probe_layers_and_info(db_url: str) -> None:
    run_id = new_run(db_url)
    layers = [{"idx": i, "name": f"layer{i}.conv", "skip": i % 2 == 1, "params": 100 * i} for i in range(3)]
    for _ in range(2):  # a resumed attempt sends them again: replaced, not duplicated
        ok = runs.set_info(db_url, run_id, params=1234, flops=None, device="cpu", torch_version="2.14.1",
                           total_steps=500, probe_layers=layers, owner="w")  # fmt: skip
        assert ok
    got = metrics.read_probe_layers(db_url, [run_id, 999])
    assert [(p.idx, p.name, p.skip, p.params) for p in got[run_id]] == [tuple(d.values()) for d in layers]
    assert got[999] == [] and count(db_url, SqlProbeLayer) == 3
    run = runs.get_run(db_url, run_id)
    assert (run.params, run.total_steps, run.torch_version) == (1234, 500, "2.14.1")
    assert not runs.set_info(db_url, run_id, params=1, flops=1, device="x", torch_version="x",
                             total_steps=1, probe_layers=[], owner="intruder")  # fmt: skip


def test_writes_fenced_on_lease_owner(db_url: str) -> None:
    run_id = new_run(db_url)
    assert not metrics.write_batch(db_url, run_id, [("lr", 0, 0.0, 0.1, 0.0)], owner="someone-else")
    assert metrics.write_batch(db_url, run_id, [("lr", 0, 0.0, 0.1, 0.0)], owner="w")
    runs.finish(db_url, run_id, "w", "succeeded")
    assert not metrics.write_batch(db_url, run_id, [("lr", 1, 0.0, 0.1, 0.0)], owner="w")
    assert count(db_url, SqlMetric) == 1


def test_delete_cascades(db_url: str) -> None:
    run_id = new_run(db_url, claim=False)
    runs.set_info(db_url, run_id, params=1, flops=1, device="cpu", torch_version="x", total_steps=1,
                  probe_layers=[{"idx": 0, "name": "fc", "skip": False, "params": 1}])  # fmt: skip
    metrics.write_batch(db_url, run_id, [("lr", 0, 0.0, 0.1, 0.0)], [probe(0)])
    runs.delete_run(db_url, run_id)
    for table in (SqlMetric, SqlLatestMetric, SqlProbeStep, SqlProbeLayer):
        assert count(db_url, table) == 0, table.__tablename__


def test_db_sink(db_url: str) -> None:
    sinks = pytest.importorskip(
        "skipweb.training.sinks", reason="skipweb.training.sinks (and the models it imports) not importable"
    )
    from skipweb.services.sink import DbSink

    run_id = new_run(db_url)
    now = [0.0]
    sink = DbSink(run_id, db_url, owner="w", cancel_poll_s=10, clock=lambda: now[0])
    layer = pytest.importorskip("skipweb.models").ProbeLayer(0, "stem.conv", False, 432)
    sink.on_start(sinks.RunInfo("mlp", 4, 1000, None, "cpu", "2.14.1", [layer], 10, 100))
    assert [(p.idx, p.name, p.params) for p in metrics.read_probe_layers(db_url, [run_id])[run_id]] == [
        (0, "stem.conv", 432)
    ]
    sink.on_flush(
        [sinks.MetricPoint("train/loss", 10, 0.1, 2.3, 1.0)], [sinks.ProbePoint(10, 0.1, [1.0], [2.0], [0.1])]
    )
    sink.on_epoch(1, 100, {"val/error": 0.5})
    assert metrics.latest(db_url, [run_id])[run_id] == {"train/loss": 2.3}
    assert runs.get_run(db_url, run_id).epochs_done == 1
    assert not sink.should_stop()
    runs.request_cancel(db_url, run_id)
    assert not sink.should_stop()  # polled at most every cancel_poll_s
    now[0] = 11.0
    assert sink.should_stop()
