"""Shared pytest fixtures. Database fixtures: a SQLite file per test and a fresh PostgreSQL database per
test module (created as ``skipweb_test_<uuid>``, dropped at the end). Others may add fixtures below."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("SKIPWEB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


# Module fixtures that train real runs for more than a few seconds: every test that uses one is slow (the
# fixture would run for it anyway), so `make test-fast` leaves it out. Named by module (dotted, from the
# checkout: tests.<folder>.<module>) and fixture name.
TRAINING_FIXTURES = {
    "tests.stories.story_helpers.digits", "tests.stories.test_stories.gradient_regimes",
    "tests.stories.test_stories_more.long_skips", "tests.ui.test_ui_compare.trained",
    "tests.ui.test_ui_landscape.trained", "tests.ui.test_ui_runs.trained",
    "tests.training.test_landscape.trained",
}  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.items() if info is not None else ()
        if any(f"{d[-1].func.__module__}.{name}" in TRAINING_FIXTURES for name, d in defs if d):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _read_secrets_forgotten() -> Iterator[None]:
    """Streamlit keeps the secrets file it read for the whole process: after test_door's OIDC case (an [auth]
    section in its working directory) every later page test would run in OIDC mode, signed out."""
    yield
    if "streamlit" in sys.modules:
        sys.modules["streamlit"].secrets._reset()


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The server's maintenance database; skips the test when no PostgreSQL server answers."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    engine = create_engine(PG_ADMIN_URL)
    try:
        with engine.connect():
            pass
    except OperationalError as e:
        pytest.skip(
            f"PostgreSQL is not running at {PG_ADMIN_URL} ({str(e.orig).splitlines()[0]}); start it: {PG_START}"
        )
    finally:
        engine.dispose()
    return PG_ADMIN_URL


@pytest.fixture(scope="module")
def pg_module_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test module, dropped afterwards."""
    from sqlalchemy import create_engine

    from db import migrate
    from db.session import dispose_engine

    name = f"skipweb_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        dispose_engine(url)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty skipweb database: a SQLite file in tmp_path, or the module's PostgreSQL
    database with every table emptied (ids restart at 1)."""
    from db import migrate
    from db.session import dispose_engine, get_engine

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'skipweb.db'}"
        migrate.upgrade(url)
        yield url
        dispose_engine(url)
        return
    url = request.getfixturevalue("pg_module_url")
    if migrate.current(url) != migrate.head():  # a migration test may have stepped it back
        migrate.upgrade(url)
    import db.tables  # noqa: F401 - registers the tables
    from db.base import Base

    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with get_engine(url).begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    yield url


@pytest.fixture
def make_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator:
    """Real worker processes against real services (tests/worker_stack.py); killed at teardown."""
    from tests import worker_stack

    yield from worker_stack.make_stack(tmp_path, monkeypatch, request)


@pytest.fixture(scope="module")
def pg():
    """A private PostgreSQL cluster the outage matrices can stop and start
    (tests/reliability/outage_helpers.py)."""
    from tests.reliability.outage_helpers import PG_BINS, PrivatePostgres

    if not PG_BINS:
        pytest.skip("PostgreSQL's initdb is not installed (/usr/lib/postgresql/*/bin/initdb)")
    server = PrivatePostgres()
    try:
        server.init()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """A private redis-server without persistence the outage matrices can stop and start."""
    import shutil

    from tests.reliability.outage_helpers import PrivateRedis

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _fresh_page_registry():
    """app.py fills skipweb.ui.links.PAGES when an AppTest runs it; a later test calling a page function on
    its own must not inherit those st.Page objects (its links and page switches would go through them)."""
    yield
    import sys

    links = sys.modules.get("skipweb.ui.links")
    if links is not None:
        links.PAGES.clear()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The dashboard's tests: SKIPWEB_* pointing at a temp data dir and a migrated SQLite database, no sign-in
    configured, tmp_path as the working directory (no .env or .streamlit/secrets.toml from the repo)."""
    from db import migrate
    from db.session import dispose_engine
    from skipweb.settings import get_settings

    url = f"sqlite:///{tmp_path / 'skipweb.db'}"
    monkeypatch.setenv("SKIPWEB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SKIPWEB_DATABASE_URL", url)
    for name in ("SKIPWEB_BROKER_URL", "SKIPWEB_AUTH_FILE", "SKIPWEB_ALLOW_ANONYMOUS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    migrate.upgrade(url)
    yield url
    get_settings.cache_clear()
    dispose_engine(url)
