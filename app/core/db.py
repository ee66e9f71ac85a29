"""Database engine and sessions: one unit of work per request or task, committed once at the end."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import get_settings


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
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    _engines.append(engine)
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, before dropping their database)."""
    for engine in _engines:
        engine.dispose()
    _engines.clear()
    engine_for.cache_clear()


def get_engine() -> Engine:
    settings = get_settings()
    return engine_for(settings.database_url, settings.database_pool_size)


@lru_cache(maxsize=8)
def _session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def new_session() -> Session:
    return _session_factory(get_engine())()


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
