"""Requests-per-minute limits per API key: a fixed one-minute window counted in Redis (shared by all API
processes), or in process memory for the single-process embedded mode; and windows that start at their
first event, for failed authentications."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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

    def hit_from_first(self, name: str, window_s: int) -> tuple[int, float]:
        key = f"{self.prefix}ratelimit:{name}"
        pipeline = self.client.pipeline(transaction=True)
        pipeline.set(key, 0, ex=window_s, nx=True)
        pipeline.incr(key)
        pipeline.pttl(key)
        _, count, left_ms = pipeline.execute()
        return int(count), max(int(left_ms), 0) / 1000


class MemoryCounter:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}
        self.windows: dict[str, tuple[int, float]] = {}  # name → (count, monotonic end of its window)
        self.lock = threading.Lock()

    def hit(self, name: str, window: int) -> int:
        with self.lock:
            self.counts = {key: value for key, value in self.counts.items() if key[1] >= window}
            self.counts[(name, window)] = self.counts.get((name, window), 0) + 1
            return self.counts[(name, window)]

    def hit_from_first(self, name: str, window_s: int) -> tuple[int, float]:
        now = time.monotonic()
        with self.lock:
            self.windows = {key: value for key, value in self.windows.items() if value[1] > now}
            count, ends = self.windows.get(name, (0, now + window_s))
            self.windows[name] = (count + 1, ends)
            return count + 1, ends - now


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


def hit_from_first(name: str, window_s: int) -> tuple[int, float]:
    """Count one event for `name` in a window that starts at its first event (no calendar boundary to
    straddle); returns the count and the seconds left in the window. Counts 0 while Redis is down."""
    settings = get_settings()
    try:
        return _counter(settings.redis_url, settings.redis_key_prefix).hit_from_first(name, window_s)
    except redis.RedisError:
        logger.warning("rate limit counter unavailable", extra={"key": name})
        return 0, 0.0


STATE_KEY = "rate_limit"


def remember(scope_state: Any, state: RateState) -> None:
    """Keep the request's rate state for `RateLimitHeaders`, which puts it on whatever answer goes out."""
    setattr(scope_state, STATE_KEY, state)


class RateLimitHeaders:
    """Adds the request's `RateLimit-*` headers to every answer, errors and streamed bodies included
    (a dependency's `Response` headers reach only routes that return plain data)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state", {}).get(STATE_KEY)
                if isinstance(state, RateState):
                    headers = list(message.get("headers", []))
                    present = {name.lower() for name, _ in headers}
                    for name, value in state.headers().items():
                        if name.lower().encode() not in present:
                            headers.append((name.lower().encode(), value.encode()))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
