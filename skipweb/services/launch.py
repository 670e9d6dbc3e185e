"""Submitting runs: the one path from a grid of choices to committed rows and broker messages.

The CLI (`skipweb submit`) and the dashboard's Launch page both call ``plan`` then ``submit``:
1. ``plan`` expands families × depths × seeds into validated specs. Any invalid combination raises
   SpecError (one line) before anything is written — nothing is ever half-queued.
2. ``submit`` writes the experiment and its runs in ONE transaction, commits, and only then publishes
   the run ids. A configuration that already succeeded, or is queued or running, is skipped unless
   ``force``; concurrent submits check and insert one at a time (db.runs.lock_submissions), so the same
   grid submitted four times at once is queued once.
If the broker is unreachable the runs stay queued in the database and a worker's sweep publishes them
later; ``SubmitResult.warning`` says so.

What happens to a run afterwards (cancel, retry, delete) is skipweb.services.runs'.

Loss landscapes follow the same path: ``submit(..., landscape={...})`` writes one ``pending`` job per
run in that same transaction (the run's worker queues it when the run succeeds);
skipweb.services.landscapes.request_landscape queues one for a finished run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from skipweb.grid import row
from skipweb.services import broker
from skipweb.spec import RunSpec, SpecError

log = logging.getLogger(__name__)
TEXT_LIMIT = 200  # experiments.title and owner: String(200) (PostgreSQL refuses more; SQLite would keep it)
TAG_LIMIT, TAGS_MAX = 64, 20  # a tag is a label to filter by, not a note: the description holds prose


@dataclass
class SubmitResult:
    experiment_id: int | None
    run_ids: list[int]
    # {"label", "config_hash", "run_id", "status"} of each configuration that succeeded, runs or is queued already
    skipped: list[dict] = field(default_factory=list)
    warning: str | None = None
    landscape_job_ids: list[int] = field(default_factory=list)  # pending, one per run

    def as_json(self) -> dict:
        return {
            "experiment_id": self.experiment_id,
            "run_ids": self.run_ids,
            "skipped": self.skipped,
            **({"landscape_job_ids": self.landscape_job_ids} if self.landscape_job_ids else {}),
            **({"warning": self.warning} if self.warning else {}),
        }


def submit(
    specs: Sequence[RunSpec],
    *,
    title: str,
    description: str = "",
    owner: str | None = None,
    tags: Sequence[str] = (),
    force: bool = False,
    db=None,
    celery=None,
    landscape: Mapping[str, Any] | None = None,
) -> SubmitResult:
    """Write the experiment and its runs in one transaction, then publish the run ids. ``landscape``
    (``{}`` for the defaults, or ``grid``, ``range_``, ``subset``, ``seed``): also a pending loss-landscape
    job per run, computed once the run succeeds; a bad value raises SpecError and writes nothing."""
    from db import experiments, landscape_jobs, runs
    from db.session import session_scope

    if not specs:
        raise SpecError("nothing to submit")
    check_text(title, owner, tags)
    if len({s.config_hash() for s in specs}) < len(specs):
        raise SpecError("the grid repeats a configuration; make each family/depth/seed combination unique")
    _check_data(specs)
    with session_scope(db) as session:
        runs.lock_submissions(session)  # concurrent submits of one grid: check and insert one at a time
        done = {} if force else runs.duplicate_runs(session, [s.config_hash() for s in specs])
        todo = [s for s in specs if s.config_hash() not in done]
        skipped = [
            {"label": s.label, "config_hash": s.config_hash(), "run_id": done[h][0], "status": done[h][1]}
            for s in specs
            if (h := s.config_hash()) in done
        ]
        if not todo:
            return SubmitResult(None, [], skipped)
        exp_id = experiments.create_experiment(session, title, description, owner=owner, tags=list(tags))
        ids = runs.add_runs(session, exp_id, [row(s) for s in todo])
        jobs = []
        if landscape is not None:
            try:
                jobs = landscape_jobs.create_jobs(session, ids, status="pending", **landscape)
            except (TypeError, ValueError) as e:  # rolls the whole submission back
                raise SpecError(f"loss landscape: {e}") from None
    # committed: a worker may now see the rows, so the ids can go out
    warning = None
    try:
        broker.publish_specs(list(zip(ids, todo, strict=True)), celery)
    except Exception as exc:  # the broker is down: rows stay queued; the workers' sweep republishes them
        log.warning("could not publish run ids: %s", exc)
        warning = (
            f"broker unreachable ({type(exc).__name__}); runs stay queued and are sent when a worker sweeps"
        )
    return SubmitResult(exp_id, ids, skipped, warning, jobs)


def check_text(title: str, owner: str | None, tags: Sequence[str]) -> None:
    """What an experiment row can hold: a title and owner of at most TEXT_LIMIT characters, and at most
    TAGS_MAX tags of at most TAG_LIMIT characters each, one line each. SpecError (one line) otherwise."""
    for name, text in (("title", title), ("owner", owner or "")):
        if len(text) > TEXT_LIMIT:
            raise SpecError(f"the {name} is {len(text)} characters long; at most {TEXT_LIMIT}")
    if len(tags) > TAGS_MAX:
        raise SpecError(f"{len(tags)} tags; at most {TAGS_MAX}")
    for tag in tags:
        if len(tag) > TAG_LIMIT:
            raise SpecError(f"the tag {tag[:20]!r}… is {len(tag)} characters long; at most {TAG_LIMIT}")
        if any(ord(c) < 32 for c in tag):
            raise SpecError(f"the tag {tag!r} contains a control character (a newline?); tags are one line each")


def _check_data(specs: Sequence[RunSpec]) -> None:
    """Refuse, before anything is written, what can never run here: a dataset this machine cannot load
    or a subset larger than its training split (SpecError, one line)."""
    from skipweb.data import DatasetError, check_available
    from skipweb.settings import get_settings

    for name, subset in sorted({(s.dataset, s.subset) for s in specs}, key=str):
        try:
            check_available(name, data_dir=get_settings().datasets_dir, subset=subset)
        except DatasetError as e:
            raise SpecError(str(e)) from None


def record_local(spec: RunSpec, *, title: str, tags: Sequence[str], owner: str | None, db=None) -> int:
    """A run that this process trains itself (``skipweb train``): written like a submitted one, so it shows
    in the dashboard, but published to no queue. Returns its id."""
    from db import experiments, runs
    from db.session import session_scope

    check_text(title, owner, tags)
    with session_scope(db) as session:
        exp = experiments.create_experiment(session, title, owner=owner, tags=list(tags))
        (run_id,) = runs.add_runs(session, exp, [row(spec)])
    return run_id
