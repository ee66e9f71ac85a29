from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from app.core import ratelimit
from app.core.config import get_settings
from app.core.db import get_session
from app.core.errors import ApiError
from app.core.logging import bind_log_fields
from app.keys import service, throttle
from app.keys.schemas import AuthenticatedKey

SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="redub"'})


async def current_key(request: Request) -> AuthenticatedKey:
    """Authenticate the Bearer key, then count the request against the key's per-minute limit.

    Async, with the database and Redis only off the event loop when needed: most requests are status
    polls whose key is in the short-lived cache.
    """
    address = throttle.client_address(request)
    throttle.refuse_if_blocked(address)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Send your API key as `Authorization: Bearer <key>`.")
    key = service.cached(token) or await run_in_threadpool(service.authenticate_in_new_session, token)
    if key is None:
        unauthorized = _unauthorized("The API key is not valid or has been revoked.")
        raise await run_in_threadpool(throttle.record_failure, address, unauthorized)
    bind_log_fields(account_id=str(key.account_id), key_prefix=key.prefix)
    if key.rate_limit_per_minute > 0:
        # Reads (polls, lists, downloads) have their own, larger budget: polling must not use up creates.
        reading = request.method in ("GET", "HEAD")
        bucket, limit, what = (
            (
                f"key:{key.id}:read",
                key.rate_limit_per_minute * get_settings().read_rate_limit_multiplier,
                "reads",
            )
            if reading
            else (f"key:{key.id}", key.rate_limit_per_minute, "requests")
        )
        state = await run_in_threadpool(ratelimit.hit, bucket, limit)
        ratelimit.remember(request.state, state)
        if state.exceeded:
            raise ApiError(
                429,
                "rate_limited",
                f"More than {limit} {what} per minute; retry after {state.reset_s} s.",
                retryable=True,
                headers=state.headers(),
            )
    return key


CurrentKey = Annotated[AuthenticatedKey, Depends(current_key)]
