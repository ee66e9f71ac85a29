"""Failed authentications per client address: after `AUTH_FAILURES_PER_MINUTE` wrong keys within a minute
of the first, the address gets 429 until that minute ends, whatever key it sends (a right key too, or
guessing would go on). Failures are counted in Redis, shared by all API processes; each process that sees
the limit passed remembers the block, so a blocked address costs no lookup at all."""

from __future__ import annotations

import math
import threading
import time

from fastapi import Request

from app.core import ratelimit
from app.core.config import get_settings
from app.core.errors import ApiError

WINDOW_S = 60
TOO_MANY_FAILED_AUTHENTICATIONS = "too_many_failed_authentications"

_blocked: dict[str, float] = {}  # address → when its block ends (time.monotonic)
_lock = threading.Lock()


def client_address(request: Request) -> str:
    # Behind a proxy this is the address the proxy forwarded, when uvicorn trusts it (FORWARDED_ALLOW_IPS).
    return request.client.host if request.client is not None else "unknown"


def _refusal(left_s: float) -> ApiError:
    retry_after = max(1, math.ceil(left_s))
    return ApiError(
        429,
        TOO_MANY_FAILED_AUTHENTICATIONS,
        f"Too many requests with a wrong API key from this address; retry after {retry_after} s.",
        retryable=True,
        headers={"Retry-After": str(retry_after)},
    )


def refuse_if_blocked(address: str) -> None:
    ends = _blocked.get(address)
    if ends is not None and ends > time.monotonic():
        raise _refusal(ends - time.monotonic())


def record_failure(address: str, unauthorized: ApiError) -> ApiError:
    """Count a wrong key from `address`; the error to answer with: `unauthorized`, or 429 past the limit."""
    limit = get_settings().auth_failures_per_minute
    if limit <= 0:
        return unauthorized
    count, left_s = ratelimit.hit_from_first(f"auth-failures:{address}", WINDOW_S)
    if count <= limit:
        return unauthorized
    now = time.monotonic()
    with _lock:
        for expired in [name for name, ends in _blocked.items() if ends <= now]:
            del _blocked[expired]
        _blocked[address] = now + left_s
    return _refusal(left_s)
