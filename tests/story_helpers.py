"""Shared helpers of the story tests (tests/test_stories*.py): train a story's preset for real into a
SQLite database, fabricate runs for verdict-logic tests, and drive the Present/Launch pages in AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest

from db import experiments, metrics, migrate, runs
from skipweb.launch import row
from skipweb.stories import AGREES, CONTRADICTS, INCONCLUSIVE, get_story, story_experiment, story_runs
from skipweb.stories.base import num

TINY = {"epochs": 1, "subset": 64, "batch_size": 32, "probe_every": 5, "device": "cpu"}
# where a story compares error rates, enough steps to leave chance level (else its findings say so)
LEARN = {**TINY, "subset": None}  # all 1,077 digits: 34 steps


# ---- helpers ------------------------------------------------------------------------------------------
def new_db(tmp: Path) -> str:
    url = f"sqlite:///{tmp / 'skipweb.db'}"
    migrate.upgrade(url)
    return url


def train(url: str, data_dir: Path, key: str, specs: list, checkpoints: Path | None = None) -> list[int]:
    """Queue the specs as an experiment tagged like a story launch, then train each one for real."""
    from db.sink import DbSink
    from skipweb.trainer import Trainer

    story = get_story(key)
    exp = experiments.create_experiment(url, story.title, tags=[story.tag])
    ids = runs.add_runs(url, exp, [row(s) for s in specs], checkpoint_dir=checkpoints)
    for rid, spec in zip(ids, specs, strict=True):
        assert runs.claim(url, rid, "w")
        ckpt = runs.get_run(url, rid).checkpoint_path if checkpoints else None
        result = Trainer(spec, data_dir=data_dir, checkpoint_dir=Path(ckpt) if ckpt else None,
                         sinks=[DbSink(rid, url, "w")]).run()  # fmt: skip
        assert runs.finish(url, rid, "w", result.status)
    return ids


def fabricate(url: str, key: str, specs: list, values: list[dict], probes: list | None = None) -> list[int]:
    """VERDICT-LOGIC ONLY: runs that never trained, marked succeeded, with the given final metrics (and
    probe rows) written directly, so a test can force the outcome a story must judge."""
    exp = experiments.create_experiment(url, "fabricated", tags=[get_story(key).tag])
    ids = runs.add_runs(url, exp, [row(s) for s in specs])
    for i, (rid, vals) in enumerate(zip(ids, values, strict=True)):
        assert runs.claim(url, rid, "w")
        runs.set_info(url, rid, params=vals.pop("_params", None), flops=None, device="cpu", torch_version=None,
                      total_steps=1, probe_layers=[], owner="w")  # fmt: skip
        points = [(k, 1, 1.0, v, 0.0) for k, v in vals.items()]
        assert metrics.write_batch(url, rid, points, probes[i] if probes else (), owner="w")
        assert runs.finish(url, rid, "w", "succeeded")
    return ids


def judged(f, a: float, b: float, holds: bool, *, chance: float, pair: bool = True) -> bool:
    """Check one comparison of two error rates ``a`` (first named) and ``b``: both at chance level →
    inconclusive, saying so with both numbers; otherwise the claim's verdict, with "(a vs b)" when
    ``pair``. Returns True when the comparison was judged (not at chance)."""
    if a >= 0.9 * chance and b >= 0.9 * chance:
        assert f.verdict == INCONCLUSIVE and "ended near chance level" in f.text, f.text
        assert f"{num(a)} and {num(b)}" in f.text, f.text
        return False
    assert f.verdict == (AGREES if holds else CONTRADICTS), f.text
    assert not pair or f"({num(a)} vs {num(b)})" in f.text, f.text
    return True


def build(url: str, key: str, exp: int | None = None):
    exp = exp if exp is not None else story_experiment(url, key).id
    return get_story(key).build(url, story_runs(url, exp))


def by_label(url: str, ids: list[int]) -> dict[str, object]:
    return {r.label: r for r in (runs.get_run(url, i) for i in ids)}


def report(key: str, view) -> None:
    """Print the findings (visible with -s): the report pastes them."""
    print(f"\n[{key}]")
    for f in view.findings:
        print(f"  [{f.badge}] {f.text}")


# ---- the Present page's story view and the Launch page (Streamlit AppTest) -----------------------------
def _page(name: str) -> None:
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
    at = AppTest.from_function(_page, args=(page,), default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def shown(at) -> str:
    """Every text on the page, markdown escapes removed."""
    kinds = ("title", "header", "subheader", "markdown", "caption", "info", "error", "warning", "success")
    return "\n".join(str(e.value) for k in kinds for e in getattr(at, k)).replace("\\", "")
