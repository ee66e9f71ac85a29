"""`Idempotency-Key`: the same key and body replay the first answer; another body under the key is refused.

The key's row is inserted first, inside the request's transaction: a concurrent request with the same key
waits on the unique index and then fails to insert (409, retry), and a request that fails rolls the row back
with everything else, so only a completed answer is ever replayed.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.errors import PROBLEM_RESPONSES, ApiError
from app.models import IdempotencyKey
from app.models.base import utcnow

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9._~:-]{1,255}$")
REPLAYED_HEADER = "Idempotent-Replayed"

# The header as the create routes declare it, and the answer to a malformed one (documented, so a client
# generated from /openapi.json knows it).
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="1–255 of `A-Z a-z 0-9 . _ ~ : -`: the same key and body replay the first answer; "
        "another is answered `400 invalid_idempotency_key`.",
    ),
]
INVALID_KEY_RESPONSE: dict[int | str, dict[str, Any]] = {400: PROBLEM_RESPONSES[400]}


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def begin(
    session: Session, account_id: uuid.UUID, key: str, digest: str, endpoint: str
) -> IdempotencyKey | None:
    """Returns the stored answer to replay, or None after reserving the key for this request.

    `endpoint` is the request's method and path template ("POST /v1/dubs")."""
    if not _KEY_PATTERN.match(key):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key: 1–255 of A-Z a-z 0-9 . _ ~ : -")
    now = utcnow()
    existing = session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.account_id == account_id,
            IdempotencyKey.key == key,
        )
    ).first()
    if existing is not None and existing.expires_at <= now:
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == existing.id))
        existing = None
    if existing is not None:
        if existing.endpoint and existing.endpoint != endpoint:
            raise ApiError(
                422,
                "idempotency_key_reused",
                f"This Idempotency-Key was used for {existing.endpoint}, not {endpoint}.",
            )
        if existing.request_hash != digest:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request body.",
            )
        return existing
    ttl = timedelta(seconds=get_settings().idempotency_ttl_s)
    try:
        with session.begin_nested():
            session.add(
                IdempotencyKey(
                    account_id=account_id,
                    key=key,
                    endpoint=endpoint,
                    request_hash=digest,
                    status_code=0,
                    response_body={},
                    expires_at=now + ttl,
                )
            )
    except IntegrityError as error:
        raise ApiError(
            409,
            "idempotency_in_progress",
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            retryable=True,
        ) from error
    return None


def finish(session: Session, account_id: uuid.UUID, key: str, status_code: int, body: dict[str, Any]) -> None:
    record = session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.account_id == account_id, IdempotencyKey.key == key)
    ).one()
    record.status_code = status_code
    record.response_body = body
    session.flush()


def purge_expired(session: Session) -> int:
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)
