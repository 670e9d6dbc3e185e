"""A submitted run's afterlife: cancel it, queue it again, delete it. The entry points (the Runs page,
``skipweb cancel``) call these; they never write to the database themselves (.importlinter: writes).

Imported by ``skipweb cancel``, so nothing here loads RunSpec or Celery at import time.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def cancel(run_id: int, *, db=None) -> str:
    """Cancel a run: a queued one at once ("cancelled"), a running one at its next step ("requested").
    RunNotFound / RunStateError (one line) for a run that is not there or has already finished."""
    from db import runs

    return runs.request_cancel(db, run_id)


def retry(run_id: int, *, db=None, celery=None) -> tuple[int, str | None]:
    """Queue a new run with a failed (cancelled, diverged) run's spec, to the same queue. Returns the new
    id and a warning when the broker could not be reached (the run stays queued; the sweep sends it)."""
    from db import runs
    from skipweb.services import broker

    new_id = runs.retry(db, run_id)
    try:
        broker.publish_runs([runs.get_run(db, new_id)], celery)
    except Exception as exc:  # the broker is down: the row stays queued; the workers' sweep sends it
        log.warning("could not publish run %s: %s", new_id, exc)
        return new_id, f"broker unreachable ({type(exc).__name__}); run {new_id} stays queued until a worker sweeps"
    return new_id, None


def delete(*, run_id: int | None = None, experiment_id: int | None = None, db=None,
           checkpoint_root: Path | None = None) -> str:  # fmt: skip
    """Delete a run, or an experiment with its runs: their rows, metrics and probes (db), then their
    checkpoint directories on this machine. Returns one sentence saying what went. A running run is
    refused (RunStateError): cancel it first. Only directories inside ``checkpoint_root`` (default: the
    settings' checkpoint dir) are removed, whatever a row says."""
    import shutil

    from db import runs
    from db.experiments import delete_experiment
    from skipweb.settings import get_settings

    if (run_id is None) == (experiment_id is None):
        raise ValueError("delete one run or one experiment")
    if run_id is not None:
        paths, what = [runs.delete_run(db, run_id)], f"run {run_id}"
    else:
        paths, what = delete_experiment(db, experiment_id), f"experiment {experiment_id}"
    root = Path(checkpoint_root or get_settings().checkpoint_dir).resolve()
    removed = 0
    for p in filter(None, paths):
        path = Path(p).resolve()
        if path.is_dir() and path.is_relative_to(root) and path != root:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    files = f" and {removed} checkpoint folder{'s' if removed != 1 else ''}" if removed else ""
    return f"{what} deleted with its metrics{files}"
