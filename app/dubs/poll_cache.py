"""An exact cache of job rows for status polls, per API process.

PostgreSQL notifies every change to a job (trigger in migration 0002); a listener evicts that job at once.
A row read from the database is kept only if no change to it was announced while it was being read, and
while the listener is not connected nothing is cached at all, so a poll never returns a row older than the
last change the process has heard of. Polls of a job that is not changing cost no database round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from app.core.config import get_settings
from app.core.db import libpq_conninfo

logger = logging.getLogger(__name__)

CHANNEL = "redub_jobs"
_MAX_ENTRIES = 20_000
_RECONNECT_S = 1.0


class PollCache:
    def __init__(self, database_url: str) -> None:
        self.conninfo = libpq_conninfo(database_url)
        self.rows: OrderedDict[uuid.UUID, dict[str, Any]] = OrderedDict()
        # Changes heard per job while it is not cached; reads compare before and after.
        self.changes: dict[uuid.UUID, int] = {}
        self.listening = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._listen())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        self._forget_all()

    def _forget_all(self) -> None:
        self.listening = False
        self.rows.clear()
        self.changes.clear()

    def changed(self, job_id: uuid.UUID) -> None:
        """A change to `job_id` happened (heard from PostgreSQL, or made by this process)."""
        self.rows.pop(job_id, None)
        self.changes[job_id] = self.changes.get(job_id, 0) + 1
        if len(self.changes) > _MAX_ENTRIES:
            # Too much to track precisely: drop everything; reads started before this are not kept.
            self.rows.clear()
            self.changes.clear()
            self.changes[job_id] = 1

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    async for notify in connection.notifies():
                        with contextlib.suppress(ValueError):
                            self.changed(uuid.UUID(notify.payload))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("job change listener lost; polls go to the database until it is back")
            # Changes may have been missed while disconnected: nothing cached is trusted any more.
            self._forget_all()
            await asyncio.sleep(_RECONNECT_S)

    async def get(
        self,
        job_id: uuid.UUID,
        read: Callable[[], Awaitable[dict[str, Any] | None]],
    ) -> dict[str, Any] | None:
        row = self.rows.get(job_id)
        if row is not None:
            self.rows.move_to_end(job_id)
            return row
        before = (self.listening, self.changes.get(job_id, 0), len(self.changes))
        row = await read()
        after = (self.listening, self.changes.get(job_id, 0), len(self.changes))
        # Keep it only if the listener was up throughout and heard nothing about this job meanwhile
        # (a shrinking `changes` means it was cleared, which also voids the read).
        if row is not None and before[0] and after[0] and before[1] == after[1] and after[2] >= before[2]:
            self.rows[job_id] = row
            self.changes.pop(job_id, None)
            if len(self.rows) > _MAX_ENTRIES:
                self.rows.popitem(last=False)
        return row


_caches: dict[int, PollCache] = {}


def for_this_loop() -> PollCache | None:
    """The running loop's cache, if the lifespan started one (PostgreSQL only)."""
    return _caches.get(id(asyncio.get_running_loop()))


def changed_here(job_id: uuid.UUID) -> None:
    """This process changed the job: forget it now rather than when the notification comes back."""
    cache = for_this_loop()
    if cache is not None:
        cache.changed(job_id)


def start() -> None:
    settings = get_settings()
    if not settings.database_url.startswith("postgresql") or not settings.poll_cache:
        return
    cache = PollCache(settings.database_url)
    _caches[id(asyncio.get_running_loop())] = cache
    cache.start()


async def stop() -> None:
    cache = _caches.pop(id(asyncio.get_running_loop()), None)
    if cache is not None:
        await cache.stop()
