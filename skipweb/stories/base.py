"""The pieces every reproduction story is made of: its preset, its findings and the view it builds.

A story never writes a number in advance: ``build(db, runs)`` reads the runs' stored metrics, probes,
block statistics or landscapes, computes each number, and turns it into a sentence with a verdict
(``agrees`` / ``contradicts`` / ``inconclusive``). A run that is absent, unfinished or lacks the data
a finding needs makes that finding inconclusive and names what is missing; it never raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go

from skipweb.stories.numbers import num

AGREES, CONTRADICTS, INCONCLUSIVE = "agrees", "contradicts", "inconclusive"
VERDICTS = (AGREES, CONTRADICTS, INCONCLUSIVE)
TAG_PREFIX = "story:"


# ---- what a story launches -----------------------------------------------------------------------------
STORY_SEEDS = (0, 1, 2)  # a story compares means against the spread over these seeds


@dataclass(frozen=True)
class Preset:
    """The runs a story needs, on offline data: families × depths × every combination of ``options``
    (the Launch form's grid) × ``seeds``. The training recipe is the dataset's default
    (``skipweb.recipes``); ``recipe`` overrides some of its fields, and says why in the story's notes.
    ``real_dataset`` names the paper's dataset when it differs."""

    families: Mapping[str, Sequence[int]]
    dataset: str
    options: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    recipe: Mapping[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = STORY_SEEDS
    probe_every: int = 10
    landscape: bool = False
    landscape_grid: int = 11
    real_dataset: str | None = None

    def training(self) -> dict[str, Any]:
        """The full training recipe: the dataset's default with this preset's overrides."""
        from skipweb.recipes import recipe_for

        return {**recipe_for(self.dataset).fields(), **self.recipe}

    def base(self, **overrides: Any) -> dict[str, Any]:
        """The RunSpec fields shared by every run (``overrides``: e.g. a tiny test recipe)."""
        return {"dataset": self.dataset, **self.training(), "probe_every": self.probe_every, **overrides}

    def specs(self, seeds: Sequence[int] | None = None, **overrides: Any) -> list[Any]:
        """Every run of the preset as validated RunSpecs: the grid the Launch page builds from its form
        (``skipweb.grid.plan``)."""
        from skipweb.grid import plan

        seeds = self.seeds if seeds is None else seeds
        return plan(list(self.families), self.families, list(seeds), self.base(**overrides), self.options)


# ---- what a story shows ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """One computed sentence and its verdict. ``values`` holds the numbers it was computed from;
    ``missing`` names what an inconclusive finding lacks (runs, or landscapes)."""

    text: str
    verdict: str
    values: Mapping[str, float] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    missing_what: str = "runs"
    hint: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {self.verdict!r}")

    @property
    def badge(self) -> str:
        if self.verdict == INCONCLUSIVE and self.missing:
            return f"{INCONCLUSIVE} (missing {self.missing_what}: {', '.join(self.missing)})"
        return self.verdict


@dataclass
class StoryView:
    findings: list[Finding] = field(default_factory=list)
    figures: list[tuple[str, go.Figure]] = field(default_factory=list)  # (caption, figure)
    gallery: list[tuple[str, Any]] = field(default_factory=list)  # (name, run): predictions to show
    notes: list[str] = field(default_factory=list)  # computed context lines (e.g. parameter counts)


@dataclass(frozen=True)
class Story:
    key: str
    title: str
    button: str  # the Launch page's preset name
    claim: str
    papers: tuple[tuple[str, str], ...]  # (citation, url)
    preset: Preset
    builder: Callable[[Any, Sequence[Any], Preset], StoryView]
    summary: str = ""
    caveat: str = ""  # measured: what the bundled data can and cannot show of the claim (README's table)

    @property
    def tag(self) -> str:
        return TAG_PREFIX + self.key

    def build(self, db: Any, runs: Sequence[Any]) -> StoryView:
        return self.builder(db, list(runs), self.preset)

    @property
    def recipe_note(self) -> str:
        """How the preset trains and how its findings weigh the noise: one paragraph for the story view."""
        from skipweb.recipes import recipe_for

        p = self.preset
        changed = ", ".join(f"{k} {v}" for k, v in p.recipe.items())
        return (f"The preset's recipe: the {p.dataset} default, {recipe_for(p.dataset).describe()}"
                + (f" Changed for this story: {changed}." if changed else "")
                + f" Seeds {', '.join(map(str, p.seeds))}: a difference counts only when it clears {NOISE_STDS:g}× "
                f"the larger standard deviation over seeds and at least {ERROR_FLOOR:g}; otherwise it is "
                "reported as the same.")  # fmt: skip

    def launch_preset(self) -> dict[str, Any]:
        """The preset in the Launch page's form format (skipweb.ui.launch.apply_preset)."""
        p = self.preset
        real = f" Real data: {p.real_dataset}." if p.real_dataset else ""
        return {
            "help": f"{self.summary}{real} Tagged {self.tag}; view it at /present?story={self.key}.",
            "families": {f: list(d) for f, d in p.families.items()},
            "options": {k: list(v) for k, v in p.options.items()},
            "dataset": p.dataset,
            **p.training(),
            "seeds": ",".join(map(str, p.seeds)),
            "probe_every": p.probe_every,
            "landscape": p.landscape,
            "landscape_grid": p.landscape_grid,
            "title": self.title,
            "tags": self.tag,
            "story": self.key,
        }


# ---- picking runs ------------------------------------------------------------------------------------------
def options_of(run: Any) -> dict[str, Any]:
    return dict(run.spec.get("options", {}))


def matching(runs: Sequence[Any], family: str, depth: int | None = None, **options: Any) -> list[Any]:
    """Runs of ``family`` (at ``depth``) whose resolved options include ``options``."""
    return [
        r
        for r in runs
        if r.family == family
        and (depth is None or r.depth == depth)
        and all(options_of(r).get(k) == v for k, v in options.items())
    ]


def want(family: str, depth: int, **options: Any) -> str:
    """A readable name for a configuration, e.g. ``plain-56 (norm=none, init=small)``."""
    extra = ", ".join(f"{k}={v}" for k, v in options.items())
    return f"{family}-{depth}" + (f" ({extra})" if extra else "")


@dataclass
class Group:
    """The runs of one configuration and the mean of a metric over those that have it (one per seed)."""

    name: str
    runs: list[Any]
    values: list[float]

    @property
    def ok(self) -> bool:
        return bool(self.values)

    @property
    def mean(self) -> float:
        return float(sum(self.values) / len(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (0 for one seed: the spread is then unknown)."""
        n = len(self.values)
        if n < 2:
            return 0.0
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (n - 1))

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def shown(self) -> str:
        """``0.12 ± 0.03 (n=3)``: what a sentence shows of a group."""
        return f"{num(self.mean)} ± {num(self.std)} (n={self.n})" if self.n > 1 else f"{num(self.mean)} (n=1)"

    @property
    def seeds(self) -> str:
        return f", mean of {len(self.values)} seeds" if len(self.values) > 1 else ""

    def why_missing(self) -> str:
        """``plain-56`` when there is no such run, ``plain-56 (running)`` when none has finished."""
        if not self.runs:
            return self.name
        states = sorted({r.status for r in self.runs})
        return f"{self.name} ({', '.join(states)})"


def group(
    runs: Sequence[Any],
    latest: Mapping[int, Mapping[str, float]],
    key: str,
    family: str,
    depth: int,
    **options: Any,
) -> Group:
    """Succeeded runs of one configuration with a finite final ``key``."""
    found = matching(runs, family, depth, **options)
    vals = [
        float(v)
        for r in found
        if r.status == "succeeded" and (v := latest.get(r.id, {}).get(key)) is not None and math.isfinite(v)
    ]
    return Group(want(family, depth, **options), found, vals)


def missing_finding(what: str, groups: Sequence[Group]) -> Finding:
    """The inconclusive finding for a comparison whose runs are not all there yet."""
    lacking = tuple(g.why_missing() for g in groups if not g.ok)
    return Finding(f"Cannot test {what} yet: no finished run of {', '.join(lacking)}.", INCONCLUSIVE,
                   missing=lacking)  # fmt: skip


CHANCE = 0.9  # an error at or above 90% of the chance-level error counts as "has not learned"


def chance_error(groups: Sequence[Group]) -> tuple[float, int] | None:
    """(error of guessing, classes) for the groups' classification dataset, or None (segmentation...)."""
    from skipweb.data import get_dataset_info

    for g in groups:
        for r in g.runs:
            try:
                info = get_dataset_info(r.dataset)
            except Exception:  # a dataset removed from the registry
                return None
            if info.task != "classification":
                return None
            return 1 - 1 / info.num_classes, info.num_classes
    return None


def at_chance(what: str, groups: Sequence[Group], errors: Sequence[float]) -> Finding | None:
    """An inconclusive finding when every compared run ended at chance level (nothing learned, so any
    difference is noise), else None. ``errors``: the compared error rates, in ``groups`` order."""
    found = chance_error(groups)
    if found is None or not all(e >= CHANCE * found[0] for e in errors):
        return None
    names = " and ".join(g.name for g in groups)
    vals = " and ".join(num(e) for e in errors)
    text = (f"{names} {'both' if len(groups) == 2 else 'all'} ended near chance level ({what} {vals}; guessing "
            f"gives {num(found[0])} with {found[1]} classes): not enough learned to compare. Train longer.")  # fmt: skip
    return Finding(text, INCONCLUSIVE, dict(zip([g.name for g in groups], errors, strict=True)))


# ---- comparing against the noise ------------------------------------------------------------------------
NOISE_STDS = 2.0  # a difference must exceed this many standard deviations (the larger of the two groups)...
ERROR_FLOOR = 0.01  # ...and at least one percentage point of error (or IoU)
MIN_SEEDS = 2  # below this the spread over seeds is unknown, so no difference can be claimed
HIGHER, SAME, LOWER = 1, 0, -1


@dataclass(frozen=True)
class Versus:
    """``a`` against ``b``: ``sign`` is HIGHER / LOWER when the difference of the means clears ``noise``
    (``NOISE_STDS`` × the larger std over seeds, at least ``floor``), SAME otherwise."""

    a: Group
    b: Group
    noise: float

    @property
    def diff(self) -> float:
        return self.a.mean - self.b.mean

    @property
    def sign(self) -> int:
        return SAME if abs(self.diff) <= self.noise else (HIGHER if self.diff > 0 else LOWER)

    @property
    def pair(self) -> str:
        """``(plain-56 0.85 ± 0.02 (n=3) vs plain-20 0.12 ± 0.03 (n=3); noise ±0.06)``"""
        return f"({self.a.name} {self.a.shown} vs {self.b.name} {self.b.shown}; noise ±{num(self.noise)})"

    def says(self, what: str, higher: str = "HIGHER", lower: str = "LOWER") -> str:
        """``HIGHER training error than plain-20``, or ``the same training error as plain-20 (within the
        noise)``: the comparison as the middle of a sentence about ``a``."""
        if self.sign == SAME:
            return f"the same {what} as {self.b.name} (within the noise)"
        return f"{higher if self.sign == HIGHER else lower} {what} than {self.b.name}"

    def values(self) -> dict[str, float]:
        return {self.a.name: self.a.mean, f"{self.a.name} std": self.a.std, f"{self.a.name} n": self.a.n,
                self.b.name: self.b.mean, f"{self.b.name} std": self.b.std, f"{self.b.name} n": self.b.n,
                "difference": self.diff, "noise": self.noise}  # fmt: skip

    def verdict(self, expected: int, *, or_same: bool = False) -> str:
        """The verdict on a claim that ``a`` is ``expected`` (HIGHER / LOWER) than ``b``. ``or_same``: the
        claim is "no worse" (a is not the opposite of ``expected``), so SAME agrees. Without it, SAME is
        inconclusive: the data cannot tell the claimed difference from the noise."""
        if self.sign == expected:
            return AGREES
        if self.sign == -expected:
            return CONTRADICTS
        return AGREES if or_same else INCONCLUSIVE


def versus(a: Group, b: Group, floor: float = ERROR_FLOOR) -> Versus:
    return Versus(a, b, max(NOISE_STDS * max(a.std, b.std), floor))


def judge(v: Versus, expected: int, head: str, tails: Mapping[str, str], or_same: bool = False) -> Finding:
    """The finding ``head (pair)tail`` with the verdict on a claim that ``a`` is ``expected`` than ``b``;
    ``tails`` maps each verdict to the sentence's end."""
    verdict = v.verdict(expected, or_same=or_same)
    return Finding(f"{head} {v.pair}{tails[verdict]}", verdict, v.values())


def compared(what: str, a: Group, b: Group) -> Versus | Finding:
    """``a`` against ``b`` on error rate ``what``, or the inconclusive finding that stops the comparison: a
    configuration with no finished run, both at chance level, or fewer than ``MIN_SEEDS`` seeds."""
    if not (a.ok and b.ok):
        return missing_finding(f"{a.name} against {b.name}", [a, b])
    return at_chance(what, [a, b], [a.mean, b.mean]) or too_few_seeds(what, [a, b]) or versus(a, b)


def too_few_seeds(what: str, groups: Sequence[Group]) -> Finding | None:
    """The inconclusive finding when a group has fewer than ``MIN_SEEDS`` finished seeds, else None."""
    short = [g for g in groups if g.n < MIN_SEEDS]
    if not short:
        return None
    lacking = tuple(f"{g.name} ({g.n} of {max(len(g.runs), MIN_SEEDS)} seeds)" for g in short)
    shown = " vs ".join(f"{g.name} {g.shown}" for g in groups)
    text = (f"Cannot compare {what} against the noise yet ({shown}): a difference needs at least {MIN_SEEDS} "
            f"finished seeds of each to measure the spread; the story presets run seeds "
            f"{', '.join(map(str, STORY_SEEDS))}.")  # fmt: skip
    vals = {k: v for g in groups for k, v in ((g.name, g.mean), (f"{g.name} n", g.n))}
    return Finding(text, INCONCLUSIVE, vals, missing=lacking, missing_what="seeds")
