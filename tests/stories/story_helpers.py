"""Shared helpers of the story tests (tests/stories/test_stories*.py, test_verdicts.py): train a story's
preset for real into a SQLite database, fabricate runs for verdict-logic tests, recompute a comparison's
expected verdict from stored per-seed values, and drive the Present/Launch pages in AppTest."""

from __future__ import annotations

import contextlib
import math
import statistics
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from db import experiments, metrics, migrate, runs
from skipweb.grid import row
from skipweb.stories import AGREES, CONTRADICTS, INCONCLUSIVE, get_story, story_experiment, story_runs
from skipweb.stories.base import ERROR_FLOOR, HIGHER, LOWER, MIN_SEEDS, NOISE_STDS, SAME
from skipweb.stories.numbers import num

TINY = {"epochs": 1, "subset": 64, "batch_size": 32, "probe_every": 5, "device": "cpu"}
# where a story compares error rates, enough steps to leave chance level (else its findings say so)
LEARN = {**TINY, "subset": None}  # all 1,077 digits: 34 steps
SEEDS = (0, 1)  # real training: two seeds, the fewest a comparison against the spread over seeds needs
FABRICATED_SEEDS = (0, 1, 2)  # verdict-logic tests: the story presets' three seeds
def says(sign: int, what: str, other: str, lower: str = "LOWER") -> str:
    """The comparison's words, written out here: 'HIGHER training error than plain-20', or 'the same training
    error as plain-20 (within the noise)'."""
    if sign == SAME:
        return f"the same {what} as {other} (within the noise)"
    return f"{'HIGHER' if sign == HIGHER else lower} {what} than {other}"


# ---- helpers ------------------------------------------------------------------------------------------
def new_db(tmp: Path) -> str:
    url = f"sqlite:///{tmp / 'skipweb.db'}"
    migrate.upgrade(url)
    return url


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one intra-op thread while the story fixtures train: these nets' tensors are tiny (8×8 digits,
    16-64 channels), so a second thread only waits on the first, and on a busy 2-core machine that made
    training about 8× slower (measured: plain-56 on all digits, 25 s with 2 threads, 3 s with 1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train(
    url: str, data_dir: Path, key: str | Sequence[str], specs: list, checkpoints: Path | None = None
) -> list[int]:
    """Queue the specs as an experiment tagged like a story launch (``key``: one story, or several whose
    presets share runs), then train each one for real."""
    from skipweb.services.sink import DbSink
    from skipweb.training.trainer import Trainer

    stories = [get_story(k) for k in ([key] if isinstance(key, str) else key)]
    exp = experiments.create_experiment(url, stories[0].title, tags=[s.tag for s in stories])
    ids = runs.add_runs(url, exp, [row(s) for s in specs], checkpoint_dir=checkpoints)
    with one_thread():
        for rid, spec in zip(ids, specs, strict=True):
            assert runs.claim(url, rid, "w")
            ckpt = runs.get_run(url, rid).checkpoint_path if checkpoints else None
            result = Trainer(spec, data_dir=data_dir, checkpoint_dir=Path(ckpt) if ckpt else None,
                             sinks=[DbSink(rid, url, "w")]).run()  # fmt: skip
            assert runs.finish(url, rid, "w", result.status)
    return ids


def fabricate(url: str, key: str, specs: list, values: list, probes: list | None = None) -> list[int]:
    """VERDICT-LOGIC ONLY: runs that never trained, marked succeeded, with the given final metrics (and
    probe rows) written directly, so a test can force the outcome a story must judge. A ``None`` in
    ``values`` leaves that run queued; ``"_status"`` in a dict ends it with that status instead."""
    exp = experiments.create_experiment(url, "fabricated", tags=[get_story(key).tag])
    ids = runs.add_runs(url, exp, [row(s) for s in specs])
    for i, (rid, vals) in enumerate(zip(ids, values, strict=True)):
        if vals is None:
            continue
        vals = dict(vals)
        assert runs.claim(url, rid, "w")
        runs.set_info(url, rid, params=vals.pop("_params", None), flops=None, device="cpu", torch_version=None,
                      total_steps=1, probe_layers=[], owner="w")  # fmt: skip
        status = vals.pop("_status", "succeeded")
        points = [(k, 1, 1.0, v, 0.0) for k, v in vals.items()]
        assert metrics.write_batch(url, rid, points, probes[i] if probes else (), owner="w")
        assert runs.finish(url, rid, "w", status)
    return ids


def seeded(specs: list, table: dict, key: str | None = None, by: Callable[[Any], str] | None = None) -> list:
    """VERDICT-LOGIC ONLY: ``fabricate``'s values, one per spec: ``table[name][seed]`` where ``name`` is the
    spec's label (or ``by(spec)``); a number becomes ``{key: number}``, a dict or None passes through."""
    out = []
    for s in specs:
        v = table[by(s) if by else s.label][s.seed]
        out.append({key: v} if isinstance(v, (int, float)) else v)
    return out


def per_seed(url: str, ids: Iterable[int], key: str, name: Callable[[Any], str] | None = None) -> dict:
    """{label (or ``name(run)``): [final ``key`` of each succeeded run, by seed]} read back from the db."""
    recs = sorted((runs.get_run(url, i) for i in ids), key=lambda r: r.seed)
    latest = metrics.latest(url, [r.id for r in recs])
    out: dict[str, list[float]] = {}
    for r in recs:
        v = latest.get(r.id, {}).get(key)
        if r.status == "succeeded" and v is not None and math.isfinite(v):
            out.setdefault(name(r) if name else r.label, []).append(float(v))
    return out


# ---- the noise rules, recomputed from per-seed values (skipweb.stories.base's constants) ---------------
@dataclass(frozen=True)
class Side:
    """One configuration in a comparison: its name in the story's sentences and its final value per seed."""

    name: str
    values: Sequence[float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if self.n > 1 else 0.0

    @property
    def shown(self) -> str:
        return f"{num(self.mean)} ± {num(self.std)} (n={self.n})" if self.n > 1 else f"{num(self.mean)} (n=1)"


@dataclass(frozen=True)
class Expect:
    """What a comparison of ``a`` against ``b`` should conclude: ``sign`` of a − b beyond ``noise``."""

    a: Side
    b: Side
    noise: float
    sign: int
    verdict: str
    close: bool  # |a − b| within rounding of the noise threshold: either side of it is fair

    @property
    def diff(self) -> float:
        return self.a.mean - self.b.mean

    @property
    def pair(self) -> str:
        """The ``(a … vs b …; noise ±…)`` part of a sentence."""
        return f"({self.a.name} {self.a.shown} vs {self.b.name} {self.b.shown}; noise ±{num(self.noise)})"


def expect(a: Side, b: Side, claim: int, *, or_same: bool = False, floor: float = ERROR_FLOOR) -> Expect:
    """The verdict on the claim that ``a`` is ``claim`` (HIGHER / LOWER) than ``b``: the difference of the
    means must exceed NOISE_STDS × the larger sample std over seeds, and ``floor``; within that it is "the
    same", which agrees with a "no worse" claim (``or_same``) and is inconclusive otherwise."""
    noise = max(NOISE_STDS * max(a.std, b.std), floor)
    diff = a.mean - b.mean
    sign = SAME if abs(diff) <= noise else (HIGHER if diff > 0 else LOWER)
    if sign == claim:
        verdict = AGREES
    elif sign == -claim:
        verdict = CONTRADICTS
    else:
        verdict = AGREES if or_same else INCONCLUSIVE
    return Expect(a, b, noise, sign, verdict, close=abs(abs(diff) - noise) < 1e-9)


def judged(
    f,
    a: Side,
    b: Side,
    claim: int,
    *,
    chance: float | None,
    or_same: bool = False,
    override: str | None = None,
) -> Expect | None:
    """Check one story comparison of ``a`` (named first) against ``b`` from their per-seed values.

    Both means at chance level (``chance``: the error of guessing; None for no such check) → inconclusive,
    saying so with both means. A side with fewer than MIN_SEEDS values → inconclusive, missing seeds.
    Otherwise the sentence shows each side as mean ± std (n) and the noise, ``values`` holds the difference
    and the noise, and the verdict is ``expect``'s (or ``override``, when the story has another reason, e.g.
    an unmatched pair). Returns the expectation when the comparison was judged, else None."""
    from skipweb.stories.base import CHANCE

    if chance is not None and a.mean >= CHANCE * chance and b.mean >= CHANCE * chance:
        assert f.verdict == INCONCLUSIVE and "ended near chance level" in f.text, f.text
        assert f"{num(a.mean)} and {num(b.mean)}" in f.text, f.text
        return None
    if min(a.n, b.n) < MIN_SEEDS:
        assert f.verdict == INCONCLUSIVE and f.missing_what == "seeds", f.text
        for side in (a, b):
            assert (side.n < MIN_SEEDS) == any(m.startswith(f"{side.name} (") for m in f.missing), f.missing
        return None
    e = expect(a, b, claim, or_same=or_same)
    assert a.shown in f.text and b.shown in f.text and f"noise ±{num(e.noise)}" in f.text, f.text
    assert f.values["noise"] == pytest.approx(e.noise) and f.values["difference"] == pytest.approx(e.diff)
    assert "×" not in f.text.split("differ")[0], f.text  # no ratio of two error rates
    if not e.close:
        assert f.verdict == (override or e.verdict), (f.text, e)
    return e


def build(url: str, key: str, exp: int | None = None):
    exp = exp if exp is not None else story_experiment(url, key).id
    return get_story(key).build(url, story_runs(url, exp))


def by_label(url: str, ids: list[int]) -> dict[str, list]:
    """{label: the runs of that configuration, by seed}."""
    out: dict[str, list] = {}
    for r in sorted((runs.get_run(url, i) for i in ids), key=lambda r: r.seed):
        out.setdefault(r.label, []).append(r)
    return out


def report(key: str, view) -> None:
    """Print the findings (visible with -s): the report pastes them."""
    print(f"\n[{key}]")
    for f in view.findings:
        print(f"  [{f.badge}] {f.text}")


# ---- the Present page's story view and the Launch page (Streamlit AppTest) -----------------------------
def _story_page(name: str) -> None:
    # named apart from tests/ui/pages.py's _page: AppTest names its script by the function, and a test run
    # after one of those got that module's page (Launch) instead of this one's
    import importlib

    importlib.import_module(f"skipweb.ui.{name}").page()


def app(monkeypatch: pytest.MonkeyPatch, url: str, data: Path, page: str = "present", **query: str):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from skipweb.settings import get_settings

    monkeypatch.setenv("SKIPWEB_DATA_DIR", str(data))
    monkeypatch.setenv("SKIPWEB_DATABASE_URL", url)
    monkeypatch.delenv("SKIPWEB_BROKER_URL", raising=False)
    monkeypatch.delenv("SKIPWEB_AUTH_FILE", raising=False)
    monkeypatch.chdir(data)
    get_settings.cache_clear()
    st.cache_data.clear()
    at = AppTest.from_function(_story_page, args=(page,), default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def shown(at) -> str:
    """Every text on the page, markdown escapes removed."""
    kinds = ("title", "header", "subheader", "markdown", "caption", "info", "error", "warning", "success")
    return "\n".join(str(e.value) for k in kinds for e in getattr(at, k)).replace("\\", "")


# ---- one real experiment for the four digits stories ----------------------------------------------------
DIGITS_STORIES = ("degradation", "add-vs-concat", "gates", "landscapes")
_SHARED: dict[str, dict] = {}


def digits_specs() -> list:
    """The presets of stories 1, 3, 5 and 6 at LEARN size, seeds 0 and 1, each configuration once. They
    all train on digits with digits' recipe (story 3's preset uses shapes-cls; digits keeps the test fast,
    same code path), so their resnet-20/56 runs are the same configurations and train once."""
    from skipweb.recipes import recipe_for

    out: dict[str, Any] = {}
    for key in DIGITS_STORIES:
        over = {**recipe_for("digits").fields(), **LEARN, "dataset": "digits"}
        for s in get_story(key).preset.specs(seeds=SEEDS, **over):
            out.setdefault(s.config_hash(), s)
    return list(out.values())


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory):
    """plain, highway (20, 56), resnet (8, 20, 56) and densenet (13, 22), seeds 0 and 1, trained for real into ONE
    experiment tagged with all four digits stories (each story reads only its families); 5×5 landscapes
    for plain-20 and resnet-20 (both seeds) and plain-56 (seed 0), none for resnet-56. Built once per
    session although both story test modules import it."""
    from db.session import dispose_engine
    from skipweb.services.landscapes import compute_and_store
    from skipweb.settings import Settings

    if "digits" not in _SHARED:
        tmp = tmp_path_factory.mktemp("digits")
        url = new_db(tmp)
        settings = Settings(data_dir=tmp, database_url=url)
        ids = train(url, settings.datasets_dir, DIGITS_STORIES, digits_specs(), tmp / "ckpt")
        recs = by_label(url, ids)
        assert {k: [r.seed for r in v] for k, v in recs.items()} == {
            f"{f}-{d}": list(SEEDS) for f, ds in (("plain", (20, 56)), ("resnet", (8, 20, 56)),
                                                 ("highway", (20, 56)), ("densenet", (13, 22))) for d in ds
        }  # fmt: skip
        with one_thread():
            for label, n in (("plain-20", 2), ("resnet-20", 2), ("plain-56", 1)):
                for r in recs[label][:n]:
                    compute_and_store(settings, r.id, grid=5, range_=1.0, subset=64, seed=0)
        _SHARED["digits"] = {"url": url, "tmp": tmp, "ids": ids, "recs": recs}
    yield _SHARED["digits"]
    dispose_engine(_SHARED["digits"]["url"])
