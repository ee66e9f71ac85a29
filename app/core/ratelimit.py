"""Requests-per-minute limits per API key: a fixed one-minute window counted in Redis (shared by all API
processes), or in process memory for the single-process embedded mode."""

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
