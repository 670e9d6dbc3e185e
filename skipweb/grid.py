"""A grid of choices (families × depths × seeds) as validated run specs, and a spec as a run row.

Pure: no database, no broker. The Launch page, ``skipweb submit`` and the story presets plan with it;
skipweb.services.launch submits what it returns.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence

from skipweb.spec import RunSpec, SpecError


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


def steps_of(spec: RunSpec) -> int:
    """Training steps of a run: epochs × batches per epoch (a partial last batch counts)."""
    from skipweb.data import get_dataset_info

    n = spec.subset or get_dataset_info(spec.dataset).train_size
    return spec.epochs * max(1, -(-n // spec.batch_size))


def similar(spec: RunSpec) -> tuple[str, int, str, int]:
    """What makes two runs' steps cost the same: family, depth, dataset, batch size."""
    return (spec.family, spec.depth, spec.dataset, spec.batch_size)


def estimate(specs: Sequence[RunSpec], finished: Iterable) -> tuple[float, int]:
    """Worker seconds the specs should take, from the median seconds per step of ``finished`` runs (records
    with spec, started_at, finished_at, total_steps) of the same :func:`similar` key; and how many specs had
    such a run. Specs with none add nothing: the caller says how many are unknown."""
    per_step: dict[tuple, list[float]] = {}
    for r in finished:
        if r.started_at and r.finished_at and r.total_steps:
            try:
                key = similar(RunSpec.parse(r.spec))
            except SpecError:
                continue
            per_step.setdefault(key, []).append((r.finished_at - r.started_at).total_seconds() / r.total_steps)
    seconds, known = 0.0, 0
    for s in specs:
        if times := per_step.get(similar(s)):
            seconds += statistics.median(times) * steps_of(s)
            known += 1
    return seconds, known
