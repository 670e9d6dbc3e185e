"""Reads of experiments and loss-landscape jobs, apart from the modules that also write them.

The entry points (skipweb.ui, skipweb.cli, workers) read from here and from db.run_queries, db.metrics,
db.blocks and db.landscapes; they never import db.experiments, db.landscape_jobs, db.runs, db.workers,
db.lease, db.migrate or db.tables, whose writes go through skipweb.services (.importlinter: writes).
"""

from __future__ import annotations

from db.experiments import get_experiment, list_experiments
from db.landscape_jobs import latest_jobs, list_jobs
from db.run_queries import count_runs, duplicate_runs, get_run, list_runs

__all__ = ["count_runs", "duplicate_runs", "get_experiment", "get_run", "latest_jobs", "list_experiments",
           "list_jobs", "list_runs"]  # fmt: skip
