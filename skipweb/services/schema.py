"""The database's schema for the entry points: check it (and create it on first use), or migrate it."""

from __future__ import annotations

from typing import Any


def open_database(settings: Any, *, create: bool = False) -> None:
    """Check the settings' database is at this version's schema (SchemaError with the command to run
    otherwise). ``create`` (the long-lived processes): the embedded SQLite file is created on first use, and a
    database that is down or locked is waited for (db.retry, the settings' budget, one log line per retry);
    without it a one-off command answers at once."""
    from db import migrate
    from db.retry import retry

    def prepare() -> None:
        if create and settings.database_url is None and migrate.current(settings.db_url) is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            migrate.upgrade(settings.db_url)
        migrate.check(settings.db_url)

    retry(prepare, what="opening the database", budget_s=settings.db_retry_seconds if create else 0)


def upgrade(settings: Any) -> str | None:
    """Create or migrate the settings' database to this version's schema; the revision it is now at."""
    from db import migrate

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.db_url)
    return migrate.current(settings.db_url)


def check(db: Any) -> str:
    """The schema check alone, on an engine or a URL: the dashboard's router runs it on every script run (one
    query when the schema is current). SchemaError with the command to run otherwise."""
    from db import migrate

    return migrate.check(db)
