"""Engines and sessions: one cached engine per URL, one context manager for every transaction.

SQLite is set up for several processes (dashboard, CLI, workers) sharing one file:

* WAL journal, so readers never block the writer and the writer never blocks readers;
* ``busy_timeout`` so a writer waits for the lock instead of failing with "database is locked";
* write transactions start with ``BEGIN IMMEDIATE``. With a plain (deferred) BEGIN a transaction that
  reads first and writes later must *upgrade* its lock; if another process wrote in between, SQLite
  returns SQLITE_BUSY at once without waiting (waiting could deadlock), busy_timeout or not. Taking the
  write lock up front makes writers queue on busy_timeout instead. Read-only scopes use a deferred
  BEGIN so the dashboard never waits on a worker's write lock.

Python's sqlite3 module (3.11 here) would emit its own deferred BEGIN before DML; we switch that off
(``isolation_level = None``) and emit BEGIN ourselves from the engine's "begin" event, as SQLAlchemy's
SQLite dialect documentation describes ("Serializable isolation / Savepoints / Transactional DDL").
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session

# What every query takes first: a URL, an engine, an open session (the query joins its transaction and
# the caller commits), or None for the settings' URL.
DbLike = str | Engine | Session | None

SQLITE_BUSY_TIMEOUT_S = 30.0
_READ_ONLY = "skipweb_read_only"  # execution option marking read-only scopes

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def default_url() -> str:
    """The URL from settings (``SKIPWEB_DATABASE_URL``, else the SQLite file in the data dir)."""
    from skipweb.settings import get_settings  # light: pydantic-settings only

    return get_settings().db_url


def idle_in_transaction_ms() -> int:
    """Half the settings' lease: a frozen holder's locks are gone before its lease runs out."""
    from skipweb.settings import get_settings

    return int(1000 * max(1.0, get_settings().lease_seconds / 2))


def make_engine(url: str, *, foreign_keys: bool = True) -> Engine:
    """A new engine configured for skipweb. Most code wants the cached :func:`get_engine` instead.

    ``foreign_keys=False`` is for migrations only: Alembic's SQLite batch mode copies and drops tables,
    and with foreign keys on, dropping a parent table would cascade-delete its children's rows.
    """
    u = make_url(url)
    if u.get_backend_name() == "postgresql":
        # A process frozen or cut off inside a transaction (SIGSTOP, a paused VM, a dead host whose TCP
        # connection lingers for hours) would keep its row locks, such as write_batch's FOR SHARE fence on
        # its run, until it woke: the sweep (FOR UPDATE SKIP LOCKED) could never requeue that run. The
        # server ends such a session once it has idled in its transaction for half a lease.
        options = f"-c idle_in_transaction_session_timeout={idle_in_transaction_ms()}"
        if given := u.query.get("options"):  # the URL's own ?options=... are kept
            options = f"{given} {options}"
        return create_engine(u, pool_pre_ping=True, connect_args={"options": options})
    if u.get_backend_name() != "sqlite":
        return create_engine(u, pool_pre_ping=True)
    if u.database and u.database != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(u.database)), exist_ok=True)
    engine = create_engine(u, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see module docstring)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")  # first: WAL switch may wait
        cur.execute("PRAGMA journal_mode=WAL")  # persistent in the file; a no-op once set
        cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a power cut may lose the last commit only
        cur.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (default: settings), created once."""
    url = url or default_url()
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


def dispose_engine(url: str) -> None:
    """Close and forget the cached engine for ``url`` (tests dropping a database, URL changes)."""
    with _lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def _dispose_after_fork() -> None:
    # A forked child (Celery prefork) must not reuse the parent's pooled connections; close=False leaves
    # them open for the parent and just forgets them here (SQLAlchemy's documented multiprocessing recipe).
    for engine in _engines.values():
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_dispose_after_fork)


def _engine_of(db: str | Engine | None) -> Engine:
    return db if isinstance(db, Engine) else get_engine(db)


def reader(db: str | Engine | None = None) -> Engine:
    """The engine for connections that only read: on SQLite their transactions begin deferred, so in WAL
    mode they never wait on (or take) the write lock, however long a writer holds it."""
    return _engine_of(db).execution_options(**{_READ_ONLY: True})


@contextmanager
def session_scope(db: str | Engine | None = None, *, read_only: bool = False) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error, always close.

    ``read_only=True`` starts a deferred transaction on SQLite (no write lock); it is rolled back at the
    end, so a read-only scope cannot write by accident.
    """
    engine = reader(db) if read_only else _engine_of(db)
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        if read_only:
            session.rollback()
        else:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def scope(db: DbLike, *, read_only: bool = False) -> Iterator[Session]:
    """What the query functions use: join the caller's session if given one, else open a new scope."""
    if isinstance(db, Session):
        yield db  # the caller's session_scope commits or rolls back
        return
    with session_scope(db, read_only=read_only) as session:
        yield session


def db_now(session: Session) -> datetime:
    """The current time, aware UTC. On PostgreSQL the server's clock (its transaction start), so leases
    compare times from one clock however skewed the workers' hosts are; SQLite is always on this host."""
    if session.get_bind().dialect.name == "postgresql":
        return session.execute(select(func.now())).scalar_one().astimezone(UTC)
    return datetime.now(UTC)


def redacted(engine_or_url: Engine | str) -> str:
    """The URL with any password masked, for messages and logs."""
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.render_as_string(hide_password=True)
