"""When to retry a request and how long to wait first (shared by the sync and async clients)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

# Connection trouble, rate limits and server faults pass; any other 4xx would fail the same way again.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BASE_DELAY_S = 0.5
MAX_DELAY_S = 8.0
# A Retry-After further ahead than this is not waited out inside one call: the error goes to the caller.
MAX_RETRY_AFTER_S = 60.0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def should_retry_status(status: int) -> bool:
    return status in RETRY_STATUSES or status >= 500


def backoff_delay(attempt: int) -> float:
    """Exponential backoff with jitter for retry number `attempt` (0 for the first retry): 0.5 s, 1 s, 2 s…
    capped at 8 s, each drawn from its upper half so clients that failed together spread out."""
    ceiling = min(MAX_DELAY_S, BASE_DELAY_S * 2.0**attempt)
    # Jitter, not a secret: the module's PRNG is the right tool.
    return ceiling * (0.5 + random.random() / 2)  # nosec B311


def retry_delay(attempt: int, response: httpx.Response | None) -> float | None:
    """How long to wait before retrying, or None when the answer asks for longer than one call should wait."""
    delay = backoff_delay(attempt)
    if response is not None:
        asked = parse_retry_after(response.headers.get("Retry-After"))
        if asked is not None:
            if asked > MAX_RETRY_AFTER_S:
                return None
            return max(asked, 0.0)
    return delay
