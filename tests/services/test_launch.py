"""skipweb.services.launch.submit on SQLite and PostgreSQL: what it skips, and that it holds when several
submits of one grid run at once (issue 22 item 12)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

SUBMITTERS = 4


@pytest.fixture
def submitting(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``submit(specs, force=False)`` against db_url with an embedded broker in tmp_path."""
    from skipweb.services.broker import make_app
    from skipweb.services.launch import submit
    from skipweb.settings import Settings, get_settings

    monkeypatch.setenv("SKIPWEB_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    celery = make_app(Settings(data_dir=tmp_path, database_url=db_url))
    yield lambda specs, force=False: submit(specs, title="grid", db=db_url, celery=celery, force=force)
    get_settings.cache_clear()


def grid():
    from skipweb.grid import plan

    return plan(["plain", "resnet"], [8], [0, 1], {"dataset": "digits", "epochs": 1, "device": "cpu"})


def hashes_queued(db_url: str) -> list[str]:
    from db.run_queries import list_runs

    return sorted(r.config_hash for r in list_runs(db_url, limit=None))


def test_submit_skips_queued_running_and_succeeded_unless_forced(db_url, submitting):
    from db import runs

    specs = grid()
    first = submitting(specs)
    assert len(first.run_ids) == 4 and first.skipped == []
    a, b, *_ = first.run_ids
    assert runs.claim(db_url, a, "w1") and runs.finish(db_url, a, "w1", "succeeded")
    assert runs.claim(db_url, b, "w1")
    again = submitting(specs)
    assert again.experiment_id is None and again.run_ids == []
    assert sorted((s["run_id"], s["status"]) for s in again.skipped) == [
        (a, "succeeded"), (b, "running"), *((i, "queued") for i in first.run_ids[2:])]  # fmt: skip
    runs.request_cancel(db_url, first.run_ids[3])  # a cancelled configuration may be queued again
    third = submitting(specs)
    assert len(third.run_ids) == 1 and len(third.skipped) == 3
    forced = submitting(specs, force=True)
    assert len(forced.run_ids) == 4 and forced.skipped == []


def test_one_grid_submitted_at_once_is_queued_once(db_url, submitting):
    """The same grid submitted 4 times at once queued every configuration 4 times: each submit checked
    before any had inserted. Now they check and insert one at a time (db.runs.lock_submissions)."""
    specs = grid()
    start = threading.Barrier(SUBMITTERS)
    results, errors = [], []

    def one() -> None:
        start.wait()
        try:
            results.append(submitting(specs))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(SUBMITTERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    queued = [r for r in results if r.run_ids]
    assert len(queued) == 1 and len(queued[0].run_ids) == len(specs)
    assert all(len(r.skipped) == len(specs) and {s["status"] for s in r.skipped} == {"queued"}
               for r in results if not r.run_ids)  # fmt: skip
    hashes = hashes_queued(db_url)
    assert len(hashes) == len(specs) == len(set(hashes))
