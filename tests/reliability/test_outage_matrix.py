"""Issue 11: the outage matrix. Real worker processes (``python -m skipweb worker``: 6 s lease, 1 s
heartbeat, the default 120 s database retry budget) against a PostgreSQL cluster and a Redis server that
are started for it (outage_helpers.py; never the shared ones), so it can stop, restart and cut them:

=====================================  ===========================================================
worker SIGKILL                         the run's worker killed mid-run; the other worker resumes it
worker SIGSTOP past its lease          the run's worker frozen until the other one has finished the
                                       run, then SIGCONT: it must write nothing more
PostgreSQL stopped 30 s                ``pg_ctl stop -m fast`` mid-run, started again 30 s later
PostgreSQL connections terminated      ``pg_terminate_backend`` on the worker's backends mid-run
Redis stopped 30 s                     while one run trains and another waits in the queue
SQLite locked 40 s (embedded mode)     another connection holds the write lock (``BEGIN IMMEDIATE``)
=====================================  ===========================================================

Every fault is triggered on an event (the run has finished an epoch, so it has a checkpoint, and is
still running); only the outage lengths and the SIGSTOP are clock-based, because they are the fault.
Each row records the run's final status, its attempts, lost metric rows (expected ``train/loss`` steps
1..total_steps and ``epoch/train_loss`` epochs 1..E that are missing), duplicated rows (a (key, step)
stored twice) and whether the checkpoint's step is the run's last step. The goal, asserted: every run
succeeded, 0 lost, 0 duplicated, every checkpoint current. Attempts are asserted as the design promises:
a worker that died or lost its lease used an attempt (2), a database or broker outage did not (1).

The SQLite row shares nothing with the others (its own file, broker folder and worker), so it runs beside
them in a thread started with the module (``embedded_lane``); the rest run one after another on the
private services (each test its own database and a flushed Redis).

``.venv/bin/python -m pytest tests/reliability/test_outage_matrix.py -s`` prints the matrix as a markdown table
(it is also written to ``outage_matrix.md`` in pytest's temporary directory).
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.reliability.outage_helpers import (
    LONG,
    PG_MODE,
    WAIT_S,
    _first_epoch,
    _mid_run,
    _owner,
    _snapshot,
    _submit_long,
    assert_goal,
    measure,
)
from tests.worker_stack import FINAL, Stack

pytestmark = [pytest.mark.services, pytest.mark.slow]

OUTAGE_S = 30.0
SQLITE_LOCK_S = 40.0


# ---- the matrix ----------------------------------------------------------------------------------------
COLUMNS = ("fault", "mode", "fault landed", "final status", "attempts", "lost rows", "duplicated rows",
           "checkpoint step / last step", "checkpoint current", "scenario s")  # fmt: skip


@pytest.fixture(scope="module")
def matrix(request, tmp_path_factory):
    """Rows of the outage matrix; printed as a markdown table (and written to a file) at module end."""
    rows: list[dict] = []
    t0, load0 = time.monotonic(), os.getloadavg()[0]
    yield rows
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
        *("| " + " | ".join(str(r.get(c, "")) for c in COLUMNS) + " |" for r in rows),
    ]
    notes = [f"- {r['fault']}: {r['note']}" for r in rows if r.get("note")]
    text = "\n".join([
        f"Outage matrix: {len(rows)} rows in {time.monotonic() - t0:.0f} s; load average "
        f"{load0:.2f} at start, {os.getloadavg()[0]:.2f} at end, {os.cpu_count()} CPUs",
        "", *lines, "", *notes,
    ])  # fmt: skip
    out = tmp_path_factory.getbasetemp() / "outage_matrix.md"
    out.write_text(text + "\n")
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print(f"\n\n{text}\n(written to {out})")


# ---- 1. worker SIGKILL ------------------------------------------------------------------------------------------
def test_worker_sigkill_mid_run(make_stack, pg, redis_server, matrix):
    t0 = time.monotonic()
    stack = make_stack(pg.create_database("sigkill"), redis_server.url())
    [run_id] = _submit_long(stack)
    stack.start_worker(), stack.start_worker()  # one trains; the other idles until the run is requeued
    _first_epoch(stack, run_id)
    victim = _owner(stack, run_id)
    stack.kill(stack.procs[victim])
    landed = stack.run(run_id)
    _mid_run(landed)
    [rec] = stack.wait_final([run_id], WAIT_S)
    other = 1 - victim
    resumed = "resumed from" in stack.log_text(other)
    row = measure(stack, run_id, "worker SIGKILL", PG_MODE, landed, t0,
                  note=f"the other worker {'resumed from the checkpoint' if resumed else 'did NOT resume'}")  # fmt: skip
    matrix.append(row)
    assert_goal(row, 2, stack)  # the killed attempt counts
    assert resumed, stack.dump_logs()


# ---- 2. worker SIGSTOP past its lease, SIGCONT after the other worker finished the run ----------------------------
def test_worker_sigstop_past_lease_then_sigcont(make_stack, pg, redis_server, matrix):
    t0 = time.monotonic()
    stack = make_stack(pg.create_database("sigstop"), redis_server.url())
    [run_id] = _submit_long(stack)
    stack.start_worker(), stack.start_worker()
    _first_epoch(stack, run_id)
    victim = _owner(stack, run_id)
    frozen = stack.procs[victim]
    os.killpg(frozen.pid, signal.SIGSTOP)
    try:
        landed = stack.run(run_id)
        _mid_run(landed)
        t_stop = time.monotonic()
        # the fault lasts until its event: the other worker's sweep requeued the run once the 6 s lease ran
        # out, and that worker claimed it, resumed it and finished it
        [done] = stack.wait_final([run_id], WAIT_S)
        held = time.monotonic() - t_stop
        before = _snapshot(stack, run_id)
    finally:
        os.killpg(frozen.pid, signal.SIGCONT)
    # the frozen worker wakes up mid-epoch, learns it lost the lease and stops without writing
    stack.wait(lambda: f"run {run_id}: lost lease" in stack.log_text(victim), 60,
               "the resumed worker to give the run up")  # fmt: skip
    after = _snapshot(stack, run_id)
    changed = [name for name, a, b in zip(("run row", "metrics", "probes", "checkpoint", "checkpoint mtime"),
                                          before, after, strict=True) if a != b]  # fmt: skip
    row = measure(stack, run_id, "worker SIGSTOP past its lease, then SIGCONT", PG_MODE, landed, t0,
                  note=f"frozen {held:.0f} s (lease 6 s) until the other worker had finished the run; after "
                  f"SIGCONT the stale worker changed: {', '.join(changed) or 'nothing'}")  # fmt: skip
    matrix.append(row)
    assert done.lease_owner is None and f"run {run_id}: succeeded" in stack.log_text(1 - victim)
    assert not changed, f"the stale worker wrote {changed} after SIGCONT\n{stack.dump_logs()}"
    assert not list(Path(done.checkpoint_path).glob("*.tmp")), "a temporary checkpoint file was left behind"
    assert_goal(row, 2, stack)  # the frozen attempt lost its lease: it counts, like a dead worker


# ---- 3. PostgreSQL stopped 30 s ---------------------------------------------------------------------------------
def test_postgres_stopped_30s_mid_run(make_stack, pg, redis_server, matrix):
    t0 = time.monotonic()
    stack = make_stack(pg.create_database("pgstop"), redis_server.url())
    [run_id] = _submit_long(stack)
    stack.start_worker()
    _first_epoch(stack, run_id)
    landed = stack.run(run_id)
    pg.stop("fast")
    try:
        time.sleep(OUTAGE_S)  # the fault
    finally:
        pg.start()
    back = pg.now()
    [rec] = stack.wait_final([run_id], WAIT_S)
    # a run cannot end while its database is down (ending is a write): it was running when PG stopped
    assert rec.finished_at > back, f"the run ended ({rec.finished_at}) before the outage; make it longer"
    log = stack.log_text(0)
    retries = log.count("database unavailable")
    requeued = "lost lease" in log
    row = measure(stack, run_id, f"PostgreSQL stopped {OUTAGE_S:.0f} s", PG_MODE, landed, t0,
                  note=f"{retries} logged write retries; lease {'LOST' if requeued else 'kept'}")  # fmt: skip
    matrix.append(row)
    assert retries, "the worker never noticed the outage"
    assert_goal(row, 1, stack)  # an outage inside the retry budget is waited out in the same attempt


# ---- 4. the worker's PostgreSQL connections terminated ------------------------------------------------------------
def test_postgres_connections_terminated_mid_run(make_stack, pg, redis_server, matrix):
    from db.session import dispose_engine

    t0 = time.monotonic()
    stack = make_stack(pg.create_database("pgterm"), redis_server.url())
    [run_id] = _submit_long(stack)
    stack.start_worker()
    _first_epoch(stack, run_id)
    dispose_engine(stack.db_url)  # this process's pooled connections: what is left is the worker's
    killed = pg.terminate_backends("pgterm")
    assert killed, "no backend of the worker to terminate"
    landed = stack.run(run_id)
    _mid_run(landed)
    [rec] = stack.wait_final([run_id], WAIT_S)
    retries = stack.log_text(0).count("database unavailable")
    row = measure(stack, run_id, "PostgreSQL connections terminated", PG_MODE, landed, t0,
                  note=f"{len(killed)} backend(s) of the worker terminated; {retries} logged retries")  # fmt: skip
    matrix.append(row)
    assert_goal(row, 1, stack)


# ---- 5. Redis stopped 30 s while a run trains and another waits ------------------------------------------------
def test_redis_stopped_30s_with_a_run_training_and_one_queued(make_stack, pg, redis_server, matrix):
    t0 = time.monotonic()
    stack = make_stack(pg.create_database("redisstop"), redis_server.url())
    [training] = _submit_long(stack)
    # published second, it waits in Redis behind the first (FIFO; the worker prefetches nothing more)
    [queued] = stack.submit(["mlp"], [4], [1], **{**LONG, "epochs": 3})
    ids = [training, queued]
    stack.start_worker()
    _first_epoch(stack, training)
    client = redis_server.client()
    waiting = client.llen("cpu")
    redis_server.stop()
    landed = stack.run(training)
    _mid_run(landed)
    assert stack.run(queued).status == "queued" and waiting == 1, (stack.run(queued).status, waiting)
    try:
        time.sleep(OUTAGE_S)  # the fault
    finally:
        redis_server.start()
    recs = stack.wait_final(ids, WAIT_S)
    # its message went with Redis (no persistence); the sweep published it again
    republished = re.search(rf"republished \[[^\]]*\b{queued}\b", stack.log_text(0)) is not None
    rows = [
        measure(stack, training, f"Redis stopped {OUTAGE_S:.0f} s: the training run", PG_MODE, landed, t0),
        measure(stack, queued, f"Redis stopped {OUTAGE_S:.0f} s: the queued run", PG_MODE, None, t0,
                note="its message was lost with Redis; the sweep "
                + ("republished it" if republished else "did NOT republish it")),
    ]  # fmt: skip
    matrix.extend(rows)
    for row in rows:
        assert_goal(row, 1, stack)  # the broker is not the truth: nothing was attempted twice
    assert republished and all(r.status in FINAL for r in recs)


# ---- 6. SQLite locked 40 s (embedded mode), beside the others --------------------------------------------------
def _sqlite_lock_scenario(stack, abort: threading.Event) -> dict:
    def wait(cond, what):
        stack.wait(lambda: abort.is_set() or cond(), WAIT_S, what, every=0.1)
        if abort.is_set():
            raise RuntimeError("aborted: the module is being torn down")

    t0 = time.monotonic()
    # rows and message written here without submit(), which reads this process's settings (another test's)
    [run_id] = stack.submit_unchecked(["mlp"], [4], [0], **LONG)
    stack.start_worker()
    wait(lambda: stack.run(run_id).epochs_done >= 1, f"run {run_id}'s first epoch")
    con = sqlite3.connect(stack.db_url.removeprefix("sqlite:///"), isolation_level=None, timeout=60)
    try:
        con.execute("BEGIN IMMEDIATE")  # the write lock; WAL readers (this test's polls) still read
        landed = stack.run(run_id)
        _mid_run(landed)
        abort.wait(SQLITE_LOCK_S)  # the fault: longer than the workers' 30 s busy timeout
        con.execute("ROLLBACK")
    finally:
        con.close()
    wait(lambda: stack.run(run_id).status in FINAL, f"run {run_id} to finish")
    log = stack.log_text(0)
    retries = log.count("database unavailable")
    requeued = "lost lease" in log
    return measure(stack, run_id, f"SQLite locked {SQLITE_LOCK_S:.0f} s", "embedded (SQLite + filesystem broker)",
                   landed, t0, note=f"{retries} logged write retries; lease {'LOST' if requeued else 'kept'}; ran "
                   "beside the rows above (its own file and broker)")  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def embedded_lane(request, tmp_path_factory):
    """The SQLite scenario shares nothing with the others (its own database file, broker folder and worker),
    so it runs beside them in a thread started with the module: its 40 s lock overlaps their faults.
    ``test_sqlite_locked_40s_mid_run`` collects its row; teardown stops its worker whatever happened."""
    if not any(item.name == "test_sqlite_locked_40s_mid_run" for item in request.session.items):
        yield None
        return
    from db import migrate
    from db.session import dispose_engine

    tmp = tmp_path_factory.mktemp("sqlite_lock")
    stack = Stack(tmp, f"sqlite:///{tmp / 'skipweb.db'}", None)
    migrate.upgrade(stack.db_url)
    abort = threading.Event()
    pool = ThreadPoolExecutor(1, thread_name_prefix="embedded-lane")
    future = pool.submit(_sqlite_lock_scenario, stack, abort)
    try:
        yield stack, future
    finally:
        abort.set()
        pool.shutdown(wait=True)
        stack.stop_all()
        dispose_engine(stack.db_url)


def test_sqlite_locked_40s_mid_run(embedded_lane, matrix):
    stack, future = embedded_lane
    row = future.result(timeout=2 * WAIT_S)
    matrix.append(row)
    assert "database unavailable" in stack.log_text(0), "the worker never noticed the lock"
    assert_goal(row, 1, stack)
