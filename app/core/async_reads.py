"""Single-row reads on the event loop, for the hottest path (status polls) on PostgreSQL.

A small pool of autocommit psycopg `AsyncConnection`s per event loop: a poll is one round trip with no
thread hop and no ORM. Anything else (writes, SQLite in embedded mode) goes through `app.core.db`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import Select

from app.core.config import get_settings
from app.core.db import get_engine, libpq_conninfo

logger = logging.getLogger(__name__)


class AsyncReadPool:
    def __init__(self, conninfo: str, size: int) -> None:
        self.conninfo = conninfo
        self.size = size
        self.idle: list[psycopg.AsyncConnection[dict[str, Any]]] = []
        self.opened = 0
        self.released = asyncio.Condition()

    async def _acquire(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        async with self.released:
            while not self.idle and self.opened >= self.size:
                await self.released.wait()
            if self.idle:
                return self.idle.pop()
            self.opened += 1
        try:
            return await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True, row_factory=dict_row)
        except BaseException:
            async with self.released:
                self.opened -= 1
                self.released.notify()
            raise

    async def _release(self, connection: psycopg.AsyncConnection[dict[str, Any]], broken: bool) -> None:
        async with self.released:
            if broken or connection.closed:
                self.opened -= 1
                await connection.close()
            else:
                self.idle.append(connection)
            self.released.notify()

    async def fetch_one(self, query: str, params: dict[str, Any]) -> dict[str, Any] | None:
        connection = await self._acquire()
        broken = False
        try:
            cursor = await connection.execute(query, params, prepare=True)
            return await cursor.fetchone()
        except psycopg.OperationalError:
            broken = True
            raise
        finally:
            await self._release(connection, broken)

    async def close(self) -> None:
        async with self.released:
            for connection in self.idle:
                await connection.close()
            self.opened -= len(self.idle)
            self.idle.clear()


_pools: dict[tuple[int, str], AsyncReadPool] = {}
_compiled: dict[tuple[int, str], str] = {}


def available() -> bool:
    return get_settings().database_url.startswith("postgresql")


def _pool() -> AsyncReadPool:
    settings = get_settings()
    key = (id(asyncio.get_running_loop()), settings.database_url)
    pool = _pools.get(key)
    if pool is None:
        pool = AsyncReadPool(libpq_conninfo(settings.database_url), settings.database_pool_size)
        _pools[key] = pool
    return pool


def _sql(statement: Select[Any]) -> str:
    key = (id(statement), get_settings().database_url)
    sql = _compiled.get(key)
    if sql is None:
        # The dialect renders `%(name)s` parameters, which psycopg takes as they are.
        sql = str(statement.compile(dialect=get_engine().dialect))
        _compiled[key] = sql
    return sql


async def fetch_one(statement: Select[Any], params: dict[str, Any]) -> dict[str, Any] | None:
    return await _pool().fetch_one(_sql(statement), params)


async def close_pools() -> None:
    loop_id = id(asyncio.get_running_loop())
    for key in [key for key in _pools if key[0] == loop_id]:
        await _pools.pop(key).close()
