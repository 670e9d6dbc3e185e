"""Alembic environment for skipweb: called by db.migrate with a ready connection, never via alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

import db.tables  # noqa: F401 - registers every table on Base.metadata
from db.base import Base
from db.migrate import VERSION_TABLE
from db.session import make_engine


def _configure(**kw: object) -> None:
    context.configure(
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        compare_type=True,
        **kw,
    )


def run_online(conn: Connection) -> None:
    # SQLite cannot ALTER most things: batch mode recreates the table (copy, drop, rename) instead.
    _configure(connection=conn, render_as_batch=conn.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():  # `--sql`: print the DDL instead of running it
    url = context.config.get_main_option("sqlalchemy.url")
    _configure(url=url, literal_binds=True, render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()
elif (connection := context.config.attributes.get("connection")) is not None:
    run_online(connection)
else:
    engine = make_engine(context.config.get_main_option("sqlalchemy.url"), foreign_keys=False)
    with engine.begin() as conn:
        run_online(conn)
    engine.dispose()
