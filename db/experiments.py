"""Experiments: a titled, tagged group of runs compared side by side."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from db.errors import RunNotFound, RunStateError
from db.records import ExperimentRecord
from db.session import DbLike, scope
from db.tables import SqlExperiment, SqlRun


def create_experiment(
    db: DbLike, title: str, description: str = "", owner: str | None = None, tags: Iterable[str] = ()
) -> int:
    """Insert an experiment; return its id."""
    with scope(db) as s:
        exp = SqlExperiment(title=title, description=description, owner=owner, tags=list(tags))
        s.add(exp)
        s.flush()
        return exp.id


def get_experiment(db: DbLike, experiment_id: int) -> ExperimentRecord | None:
    with scope(db, read_only=True) as s:
        exp = s.get(SqlExperiment, experiment_id)
        return None if exp is None else exp.to_record(_counts(s, [experiment_id]).get(experiment_id))


def list_experiments(db: DbLike, tag: str | None = None) -> list[ExperimentRecord]:
    """Newest first, each with its number of runs per status in ``counts``."""
    with scope(db, read_only=True) as s:
        exps = [e for e in s.scalars(select(SqlExperiment).order_by(SqlExperiment.id.desc())) if _has(e, tag)]
        counts = _counts(s, [e.id for e in exps])
        return [e.to_record(counts.get(e.id)) for e in exps]


def experiment_ids_with_tag(s: Session, tag: str) -> list[int]:
    """Ids of experiments tagged ``tag``. Filtered in Python: JSON containment differs per backend and
    experiments number in the hundreds, not millions."""
    return [e.id for e in s.scalars(select(SqlExperiment)) if _has(e, tag)]


def delete_experiment(db: DbLike, experiment_id: int, force: bool = False) -> list[str]:
    """Delete an experiment with its runs and their metrics and probes (ON DELETE CASCADE).

    Refuses while a run is running unless ``force``. Returns the runs' checkpoint paths so the caller can
    remove the files: the database layer does not touch the file system.
    """
    with scope(db) as s:
        if s.get(SqlExperiment, experiment_id) is None:
            raise RunNotFound(f"experiment {experiment_id} does not exist")
        rows = s.execute(
            select(SqlRun.id, SqlRun.status, SqlRun.checkpoint_path).where(
                SqlRun.experiment_id == experiment_id
            )
        ).all()
        running = [r.id for r in rows if r.status == "running"]
        if running and not force:
            raise RunStateError(f"experiment {experiment_id} has running runs {running}: cancel them first")
        s.execute(delete(SqlExperiment).where(SqlExperiment.id == experiment_id))
        return [r.checkpoint_path for r in rows if r.checkpoint_path]


def _has(exp: SqlExperiment, tag: str | None) -> bool:
    return tag is None or tag in (exp.tags or [])


def _counts(s: Session, ids: list[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    if not ids:
        return out
    q = (
        select(SqlRun.experiment_id, SqlRun.status, func.count())
        .where(SqlRun.experiment_id.in_(ids))
        .group_by(SqlRun.experiment_id, SqlRun.status)
    )
    for exp_id, status, n in s.execute(q):
        out.setdefault(exp_id, {})[status] = n
    return out
