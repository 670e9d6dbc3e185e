"""Alembic, configured in code: no alembic.ini. The CLI's ``skipweb db upgrade`` calls :func:`upgrade`.

Every process that opens the database calls :func:`check` at start-up, which fails with the command to
run when the schema is missing or at another revision, instead of failing later on a missing column.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import exc, text
from sqlalchemy.engine import Engine

from db.errors import SchemaError
from db.session import default_url, get_engine, make_engine, reader, redacted

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Our own name, so skipweb can share a PostgreSQL database with another Alembic-managed application.
VERSION_TABLE = "skipweb_alembic_version"
UPGRADE_COMMAND = "skipweb db upgrade"
# PostgreSQL advisory lock key held by a migration for its transaction (any constant unique to skipweb)
MIGRATION_LOCK = 0x736B6970  # "skip"

__all__ = ["SchemaError", "check", "current", "downgrade", "head", "make_revision", "upgrade"]

if TYPE_CHECKING:  # Alembic is imported where a migration runs: a command that only reads never loads it
    from alembic.config import Config


def newest_revision() -> str:
    """The newest migration's id from the file names (``make_revision`` names them ``NNNN_*.py``): what
    :func:`check` compares with, without loading Alembic (tests check it equals :func:`head`)."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def config(url: str | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Offline (--sql) mode reads the URL from here; '%' must be doubled for configparser.
    cfg.set_main_option("sqlalchemy.url", (url or default_url()).replace("%", "%%"))
    return cfg


def head() -> str:
    """The revision this code needs."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(config("sqlite://")).get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}"
    return heads[0]


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at ``url`` (default: settings) to ``revision`` in one transaction; any number may
    run at once (they take turns on an advisory lock on PostgreSQL)."""
    from alembic import command

    _run(url, lambda cfg: command.upgrade(cfg, revision))


def downgrade(url: str | None, revision: str) -> None:
    """Step the schema back to ``revision`` ("base" drops every skipweb table). For development."""
    from alembic import command

    _run(url, lambda cfg: command.downgrade(cfg, revision))


def _run(url: str | None, fn: Callable[[Config], None]) -> None:
    url = url or default_url()
    cfg = config(url)
    # A dedicated engine with foreign keys off (see session.make_engine) for the whole migration.
    engine = make_engine(url, foreign_keys=False)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Migrations one at a time (compose's migrate job, a worker started by hand, ...): two at once
                # on an empty database both CREATE TYPE and one fails on pg_type's unique index. The lock is
                # the transaction's; the next one waits, then finds the schema current and does nothing.
                # (SQLite's BEGIN IMMEDIATE serialises them already.)
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            fn(cfg)
    finally:
        engine.dispose()


def current(db: str | Engine | None = None) -> str | None:
    """The database's revision, or None when it has no skipweb schema."""
    from alembic.runtime.migration import MigrationContext

    engine = db if isinstance(db, Engine) else get_engine(db)
    with reader(engine).connect() as conn:  # a read: no write lock (SQLite), so never a wait on a writer
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return ctx.get_current_revision()


def check(db: str | Engine | None = None) -> str:
    """Raise :class:`SchemaError` unless the database is at :func:`head`; return the revision."""
    engine = db if isinstance(db, Engine) else get_engine(db)
    try:  # the common case, read in one query without Alembic: the schema is current
        with reader(engine).connect() as conn:
            rev = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
        if rev == newest_revision():
            return rev
    except (exc.OperationalError, exc.ProgrammingError):  # no version table: say so below
        pass
    from alembic.script import ScriptDirectory

    where = f"database at {redacted(engine)}"
    rev, need = current(engine), head()
    if rev is None:
        raise SchemaError(f"{where} has no skipweb schema: run `{UPGRADE_COMMAND}`")
    if rev != need:
        known = {s.revision for s in ScriptDirectory.from_config(config("sqlite://")).walk_revisions()}
        if rev not in known:
            raise SchemaError(
                f"{where} is at revision {rev}, which this skipweb does not know "
                f"(written by a newer version?); skipweb needs {need}: upgrade skipweb"
            )
        raise SchemaError(f"{where} is at revision {rev}, skipweb needs {need}: run `{UPGRADE_COMMAND}`")
    return rev


def make_revision(message: str, url: str | None = None, autogenerate: bool = True) -> None:
    """Write a new migration in db/migrations/versions (developers; compares the models to ``url``)."""
    from alembic import command
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(config("sqlite://"))
    rev_id = f"{len(list(scripts.walk_revisions())) + 1:04d}"
    _run(url, lambda cfg: command.revision(cfg, message, autogenerate=autogenerate, rev_id=rev_id))
