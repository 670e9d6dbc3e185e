"""skipweb's database layer: SQLAlchemy 2 tables, sessions, Alembic migrations and the queries.

Modules, by entity:
    db.session      get_engine(url), session_scope(db) — one transaction per scope
    db.migrate      upgrade(url), current(db), check(db) — schema version, run at start-up
    db.experiments  create/list/delete experiments
    db.runs         run lifecycle: add_runs, claim, heartbeat, finish, cancel, requeue, retry, reads
    db.metrics      write_batch (one transaction per flush), read_metrics, read_grad, latest
    db.lease        the one lease a worker holds on a run or a landscape job
    db.workers      connected workers: announce, renew, leave, who is connected now

Every query takes the database first: a URL, an Engine, an open Session (to join its transaction)
or None for the settings' URL. Queries return plain records (db.records), never ORM objects.
Nothing here imports torch, training code or an entry point (import-linter checks it: .importlinter);
the only skipweb modules db uses are skipweb.settings and skipweb.facts.
"""

from typing import Any

from db.errors import RunNotFound, RunStateError, SchemaError

__all__ = [
    "ExperimentRecord",
    "ProbeLayerRecord",
    "RunNotFound",
    "RunRecord",
    "RunStateError",
    "SchemaError",
    "get_engine",
    "session_scope",
]


def __getattr__(name: str) -> Any:
    """Records and sessions load SQLAlchemy: imported when first asked for, so importing ``db.errors``
    (the CLI's error handler does, for ``skipweb --help``) costs nothing."""
    if name in ("ExperimentRecord", "ProbeLayerRecord", "RunRecord"):
        from db import records

        return getattr(records, name)
    if name in ("get_engine", "session_scope"):
        from db import session

        return getattr(session, name)
    raise AttributeError(f"module 'db' has no attribute {name!r}")
