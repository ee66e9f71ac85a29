"""Readiness: can this process reach the database, the broker and object storage right now?"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import text

from app.core.db import get_engine
from app.core.queue import producer
from app.core.storage import get_storage

logger = logging.getLogger(__name__)


def _database() -> None:
    with get_engine().connect() as connection:
        connection.execute(text("SELECT 1"))


def _broker() -> None:
    with producer().connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=2)


def _storage() -> None:
    get_storage().ping()


CHECKS: dict[str, Callable[[], None]] = {"database": _database, "broker": _broker, "storage": _storage}


# /readyz is unauthenticated: answers are reused for a short while so a flood of probes costs one round of
# checks per interval, not one per request, and concurrent probes wait for the round in flight.
READINESS_MAX_AGE_S = 2.0
_cached: tuple[float, dict[str, str]] | None = None
_lock = threading.Lock()


def readiness() -> dict[str, str]:
    """The latest check results, run again when older than READINESS_MAX_AGE_S."""
    global _cached
    with _lock:
        if _cached is not None and time.monotonic() - _cached[0] < READINESS_MAX_AGE_S:
            return dict(_cached[1])
        results = _check_all()
        _cached = (time.monotonic(), results)
        return dict(results)


def _check_all() -> dict[str, str]:
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as error:
            logger.warning("readiness check failed", extra={"check": name, "error": repr(error)})
            results[name] = "unreachable"
    return results
