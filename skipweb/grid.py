"""A grid of choices (families × options × depths × seeds) as validated run specs, and a spec as a run row.

Pure: no database, no broker. The Launch page, ``skipweb train``/``submit`` and the story presets plan with it;
skipweb.services.launch submits what it returns.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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
    depths: Sequence[int] | Mapping[str, Sequence[int]],
    seeds: Sequence[int],
    base: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
    *,
    twin: bool = False,
) -> list[RunSpec]:
    """THE grid: every family × each combination of its options × its depths × seeds, as validated RunSpecs.
    The Launch page, the story presets and ``skipweb train``/``submit`` all expand their choices here.

    ``depths``: one list for every family, or family → its own list. ``options``: option → one value, or a
    list of values (every combination runs); a family gets only the options it declares (``norm`` to all,
    ``shortcut`` only to resnet), an option no chosen family declares is an error, and an empty list means
    the family's default. ``twin``: each family's plain twin (:func:`twin_options`). A configuration that
    comes out twice is kept once. The first invalid one raises SpecError naming it; nothing is half-planned.
    """
    from skipweb.models import get_info

    if not families:
        raise SpecError("choose at least one model family")
    grid = {k: list(v) if isinstance(v, list | tuple) else [v] for k, v in (options or {}).items()}
    grid = {k: v for k, v in grid.items() if v}  # an empty list: the default
    unused = set(grid)
    specs: dict[str, RunSpec] = {}
    for family in families:
        info = get_info_or_error(get_info, family)
        mine = {k: v for k, v in grid.items() if k in info.options}
        unused -= set(mine)
        fam_depths = depths.get(family, ()) if isinstance(depths, Mapping) else depths
        if not fam_depths:
            raise SpecError(f"choose at least one depth for {family}")
        for combo in itertools.product(*mine.values()):
            opts = {**dict(zip(mine, combo, strict=True)), **(twin_options(info) if twin else {})}
            for depth, seed in itertools.product(fam_depths, seeds):
                spec = _spec({**base, "family": family, "depth": depth, "seed": seed, "options": opts})
                specs.setdefault(spec.config_hash(), spec)
    if unused:
        raise SpecError(f"no chosen family has option {sorted(unused)[0]!r}")
    return list(specs.values())


def twin_options(info) -> dict[str, Any]:
    """A family's plain twin (the same network without its skips): ``no_skip``, or ``skip=none`` for U-Net's
    long skips. A family with neither gets ``no_skip``, which the registry refuses with its valid options."""
    return {"skip": "none"} if "no_skip" not in info.options and "skip" in info.options else {"no_skip": True}


def _spec(fields: dict) -> RunSpec:
    try:
        return RunSpec.parse(fields)
    except SpecError as e:
        raise SpecError(f"{fields['family']}-{fields['depth']} (seed {fields['seed']}): {e}") from None


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
