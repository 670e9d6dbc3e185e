"""Submitting runs: the one path from a grid of choices to committed rows and broker messages.

The CLI (`skipweb submit`) and the dashboard's Launch page both call ``plan`` then ``submit``:
1. ``plan`` expands families × depths × seeds into validated specs. Any invalid combination raises
   SpecError (one line) before anything is written — nothing is ever half-queued.
2. ``submit`` writes the experiment and its runs in ONE transaction, commits, and only then publishes
   the run ids. A configuration that already succeeded is skipped unless ``force``.
If the broker is unreachable the runs stay queued in the database and a worker's sweep publishes them
later; ``SubmitResult.warning`` says so.

Loss landscapes follow the same path: ``submit(..., landscape={...})`` writes one ``pending`` job per
run in that same transaction (the run's worker queues it when the run succeeds), and
``request_landscape`` writes a ``queued`` job for a finished run, commits, then publishes its id.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skipweb.spec import RunSpec, SpecError

log = logging.getLogger(__name__)
TEXT_LIMIT = 200  # experiments.title and owner: String(200) (PostgreSQL refuses more; SQLite would keep it)


@dataclass
class SubmitResult:
    experiment_id: int | None
    run_ids: list[int]
    skipped: list[dict] = field(default_factory=list)  # {"label", "config_hash", "run_id"} already succeeded
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


def split_list(text: str | Iterable, cast=str) -> list:
    """'20,56' -> [20, 56]; lists pass through. A bad item raises SpecError naming it."""
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else list(text)
    out = []
    for item in items:
        if item == "":
            continue
        try:
            out.append(cast(item))
        except (TypeError, ValueError):
            raise SpecError(f"{item!r} is not a valid {cast.__name__}") from None
    if not out:
        raise SpecError("empty list")
    return out


def plan(
    families: Sequence[str],
    depths: Sequence[int],
    seeds: Sequence[int],
    base: dict,
    options: dict | None = None,
) -> list[RunSpec]:
    """Every combination as a validated RunSpec; the first invalid one raises SpecError naming it.

    ``options`` are model options applied to each family that declares them (e.g. ``norm`` to all,
    ``shortcut`` only to resnet); an option no chosen family declares is an error.
    """
    from skipweb.models import get_info

    options = dict(options or {})
    unused = set(options)
    specs = []
    for family, depth, seed in itertools.product(families, depths, seeds):
        declared = get_info_or_error(get_info, family).options
        fam_opts = {k: v for k, v in options.items() if k in declared}
        unused -= set(fam_opts)
        try:
            specs.append(
                RunSpec.parse({**base, "family": family, "depth": depth, "seed": seed, "options": fam_opts})
            )
        except SpecError as e:
            raise SpecError(f"{family}-{depth} (seed {seed}): {e}") from None
    if unused:
        raise SpecError(f"no chosen family has option {sorted(unused)[0]!r}")
    return specs


def get_info_or_error(get_info, family: str):
    try:
        return get_info(family)
    except ValueError as e:
        raise SpecError(str(e)) from None


def submit(
    specs: Sequence[RunSpec],
    *,
    title: str,
    description: str = "",
    owner: str | None = None,
    tags: Sequence[str] = (),
    force: bool = False,
    queue: str = "cpu",
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
    for name, text in (("title", title), ("owner", owner or "")):
        if len(text) > TEXT_LIMIT:
            raise SpecError(f"the {name} is {len(text)} characters long; at most {TEXT_LIMIT}")
    if len({s.config_hash() for s in specs}) < len(specs):
        raise SpecError("the grid repeats a configuration; make each family/depth/seed combination unique")
    with session_scope(db) as session:
        done = {} if force else runs.succeeded_hashes(session, [s.config_hash() for s in specs])
        todo = [s for s in specs if s.config_hash() not in done]
        skipped = [
            {"label": s.label, "config_hash": s.config_hash(), "run_id": done[s.config_hash()]}
            for s in specs
            if s.config_hash() in done
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
        from workers.celery_app import enqueue

        enqueue(ids, queue=queue, celery=celery)
    except Exception as exc:  # the broker is down: rows stay queued; the workers' sweep republishes them
        log.warning("could not publish run ids: %s", exc)
        warning = (
            f"broker unreachable ({type(exc).__name__}); runs stay queued and are sent when a worker sweeps"
        )
    return SubmitResult(exp_id, ids, skipped, warning, jobs)


def row(spec: RunSpec) -> dict:
    return {
        "spec": spec.model_dump(mode="json"),
        "config_hash": spec.config_hash(),
        "label": spec.label,
        "family": spec.family,
        "depth": spec.depth,
        "dataset": spec.dataset,
        "seed": spec.seed,
    }


# ---- loss landscapes on demand ---------------------------------------------------------------------------
@dataclass
class LandscapeRequest:
    job_id: int
    run_id: int
    warning: str | None = None

    def as_json(self) -> dict:
        return {
            "job_id": self.job_id,
            "run_id": self.run_id,
            "status": "queued",
            **({"warning": self.warning} if self.warning else {}),
        }


def landscape_blocker(record) -> str | None:
    """Why a landscape of this run cannot be computed now (a sentence), or None when it can: it needs the
    final weights, so a finished run with a checkpoint."""
    from db.records import FINAL_STATUSES
    from skipweb.checkpoint import CHECKPOINT_NAME

    if record.status not in FINAL_STATUSES:
        return (
            f"run {record.id} is {record.status}: a landscape needs its final weights, once it has finished"
        )
    if not record.checkpoint_path or not (Path(record.checkpoint_path) / CHECKPOINT_NAME).is_file():
        return f"run {record.id} has no checkpoint on this machine (looked in {record.checkpoint_path})"
    return None


def request_landscape(run_id: int, *, db=None, celery=None, **params) -> LandscapeRequest:
    """Queue a loss landscape of a finished run: commit the job row, then publish its id to the run's
    queue. ``params``: ``grid``, ``range_``, ``subset``, ``seed`` (db.landscape_jobs.create_jobs). Raises
    SpecError (one line) when the run is unknown or not ready; a broker that is down only warns, the
    workers' sweep publishes the job later."""
    from db import landscape_jobs
    from db.run_queries import get_run
    from workers.celery_app import enqueue_landscapes, queue_of_run

    record = get_run(db, run_id)
    if record is None:
        raise SpecError(f"no run {run_id}")
    if (why := landscape_blocker(record)) is not None:
        raise SpecError(why)
    try:
        job_id = landscape_jobs.create_job(db, run_id, **params)
    except (TypeError, ValueError) as e:
        raise SpecError(f"loss landscape: {e}") from None
    warning = None
    try:
        enqueue_landscapes([job_id], queue=queue_of_run(record), celery=celery)
    except Exception as exc:
        log.warning("could not publish landscape job %s: %s", job_id, exc)
        warning = f"broker unreachable ({type(exc).__name__}); the job stays queued and is sent when a worker sweeps"
    return LandscapeRequest(job_id, run_id, warning)
