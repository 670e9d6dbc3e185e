"""Helpers of the dashboard page tests (test_ui_launch.py, test_ui_runs.py): run one page function as a
small AppTest script with query params, read what it shows, count and add runs."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

TIMEOUT = 60


def _page(name: str) -> None:
    import importlib

    from skipweb.ui.auth import sidebar_auth

    sidebar_auth()
    importlib.import_module(f"skipweb.ui.{name}").page()


def team_sign_in(tmp_path: Path, monkeypatch, user: str, password: str) -> None:
    """A team deployment's password file with one user (SKIPWEB_AUTH_FILE); nobody signed in yet."""
    from skipweb.passwords import hash_password
    from skipweb.settings import get_settings

    auth = tmp_path / "users.txt"
    auth.write_text(f"# team\n{user}:{hash_password(password)}\n")
    monkeypatch.setenv("SKIPWEB_AUTH_FILE", str(auth))
    get_settings.cache_clear()


def page_test(name: str, **query) -> AppTest:
    at = AppTest.from_function(_page, args=(name,), default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    return at


MARKDOWN = ("markdown", "caption", "error", "warning", "info", "success", "title", "subheader")


def sources(at: AppTest, kinds=(*MARKDOWN, "text")) -> list[str]:
    """The source of every text element the page shows (markdown, captions, alerts, titles; st.text)."""
    parts = []
    for kind in kinds:
        parts += [str(e.value) for e in getattr(at, kind)]
    return parts


def texts(at: AppTest) -> str:
    """Every text the page shows, joined, as a reader sees it (user text's escaping backslashes removed)."""
    return re.sub(r"\\(.)", r"\1", "\n".join(sources(at)))


def count_runs(url: str) -> int:
    from db.run_queries import list_runs

    return len(list_runs(url, limit=None))


def add(
    url: str, specs: list[dict], title: str = "exp", tags=(), checkpoint_dir: Path | None = None
) -> list[int]:
    from db.experiments import create_experiment
    from db.runs import add_runs
    from skipweb.grid import row
    from skipweb.spec import RunSpec

    exp = create_experiment(url, title, tags=list(tags))
    return add_runs(url, exp, [row(RunSpec.parse(s)) for s in specs], checkpoint_dir=checkpoint_dir)
