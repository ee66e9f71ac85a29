"""Database engine and sessions: one unit of work per request or task, committed once at the end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sqlalchemy_errors
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import get_settings

# What the drivers raise when the server cannot be reached or dropped the connection (a restart, a failover,
# a full pool): the same work may succeed in a moment. The API answers these with a 503, tasks retry.
DATABASE_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sqlalchemy_errors.OperationalError,
    sqlalchemy_errors.InterfaceError,
    sqlalchemy_errors.TimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # The embedded API and worker share one SQLite file: WAL lets them read while the other writes.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


_engines: list[Engine] = []


@lru_cache(maxsize=8)
def engine_for(url: str, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # No pre-ping (a round trip on every checkout): connections are recycled instead, and a dropped one
        # fails one request, which the client retries.
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=300)
    _engines.append(engine)
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, before dropping their database)."""
    for engine in _engines:
        engine.dispose()
    _engines.clear()
    engine_for.cache_clear()
    _read_engine.cache_clear()


def libpq_conninfo(database_url: str) -> str:
    """The libpq connection string of a PostgreSQL URL, for psycopg's own connections (poll cache, reads).

    Built from the parsed parts: libpq refuses a URL whose password holds a space.
    """
    url = make_url(database_url)
    query = {name: value for name, value in url.query.items() if isinstance(value, str)}
    return make_conninfo(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database, **query
    )


def get_engine() -> Engine:
    settings = get_settings()
    return engine_for(settings.database_url, settings.database_pool_size)


@lru_cache(maxsize=8)
def _session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def new_session() -> Session:
    return _session_factory(get_engine())()


@lru_cache(maxsize=8)
def _read_engine(url: str, pool_size: int) -> Engine:
    if url.startswith("sqlite"):
        return engine_for(url, pool_size)
    # A pool of its own whose connections stay in autocommit: a poll is one round trip, with no
    # BEGIN/COMMIT and no isolation switch or rollback on checkout and return.
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=300,
        isolation_level="AUTOCOMMIT",
        pool_reset_on_return=None,
    )
    _engines.append(engine)
    return engine


_thread_connections = threading.local()


@contextmanager
def read_connection() -> Iterator[Connection]:
    """A connection for single reads (status polls); it must not write.

    Each thread keeps its own, so a poll skips even the pool's checkout; a broken one is dropped.
    """
    settings = get_settings()
    engine = _read_engine(settings.database_url, settings.database_pool_size)
    if settings.database_url.startswith("sqlite"):
        # SQLite's small pool is shared with writers: borrow and give back.
        with engine.connect() as borrowed:
            yield borrowed
        return
    connection: Connection | None = getattr(_thread_connections, "connection", None)
    if connection is None or connection.closed or connection.engine is not engine:
        connection = engine.connect()
        _thread_connections.connection = connection
    try:
        yield connection
    except DBAPIError:
        _thread_connections.connection = None
        connection.invalidate()
        raise


def get_session() -> Iterator[Session]:
    """FastAPI dependency: commit when the endpoint returns, roll back when it raises."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
