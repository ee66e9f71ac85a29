"""Requests-per-minute limits per API key: a fixed one-minute window counted in Redis (shared by all API
processes), or in process memory for the single-process embedded mode."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

import redis

from app.core.config import get_settings

logger = logging.getLogger(__name__)

_WINDOW_S = 60


@dataclass(frozen=True)
class RateState:
    limit: int
    remaining: int
    reset_s: int

    @property
    def exceeded(self) -> bool:
        return self.remaining < 0

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(self.remaining, 0)),
            "RateLimit-Reset": str(self.reset_s),
            "RateLimit-Policy": f"{self.limit};w={_WINDOW_S}",
        }
        if self.exceeded:
            headers["Retry-After"] = str(self.reset_s)
        return headers


class RedisCounter:
    def __init__(self, url: str, prefix: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = prefix

    def hit(self, name: str, window: int) -> int:
        key = f"{self.prefix}ratelimit:{name}:{window}"
        pipeline = self.client.pipeline(transaction=False)
        pipeline.incr(key)
        pipeline.expire(key, _WINDOW_S + 5)
        count, _ = pipeline.execute()
        return int(count)


class MemoryCounter:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}
        self.lock = threading.Lock()

    def hit(self, name: str, window: int) -> int:
        with self.lock:
            self.counts = {key: value for key, value in self.counts.items() if key[1] >= window}
            self.counts[(name, window)] = self.counts.get((name, window), 0) + 1
            return self.counts[(name, window)]


@lru_cache(maxsize=4)
def _counter(url: str, prefix: str) -> RedisCounter | MemoryCounter:
    if url.startswith("memory"):
        return MemoryCounter()
    return RedisCounter(url, prefix)


def hit(name: str, limit: int) -> RateState:
    """Count one request for `name` against `limit` per minute."""
    settings = get_settings()
    now = time.time()
    window = int(now // _WINDOW_S)
    try:
        count = _counter(settings.redis_url, settings.redis_key_prefix).hit(name, window)
    except redis.RedisError:
        # Fail open: a Redis outage must not take the whole API down with it.
        logger.warning("rate limit counter unavailable", extra={"key": name})
        count = 0
    reset_s = max(1, int((window + 1) * _WINDOW_S - now))
    return RateState(limit=limit, remaining=limit - count, reset_s=reset_s)
