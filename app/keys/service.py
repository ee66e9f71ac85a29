"""Issue, revoke and check API keys.

A key reads `rdb_<prefix>_<secret>`: the prefix is stored in the clear to find the row (and to be shown in
dashboards and logs), the whole key only as an HMAC-SHA256 under the server's `REDUB_KEY_HASH_SECRET`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.db import new_session
from app.keys import repository
from app.keys.schemas import AuthenticatedKey
from app.models import ApiKey
from app.models.base import utcnow

KEY_PREFIX = "rdb_"


@dataclass(frozen=True)
class IssuedKey:
    key: str
    webhook_secret: str
    record: ApiKey


def hash_key(key: str) -> str:
    secret = get_settings().key_hash_secret.encode()
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_key(
    session: Session,
    name: str,
    *,
    account_id: uuid.UUID | None = None,
    rate_limit_per_minute: int | None = None,
    max_concurrent_jobs: int | None = None,
    max_duration_s: float | None = None,
) -> IssuedKey:
    settings = get_settings()
    prefix = KEY_PREFIX + secrets.token_hex(6)
    key = f"{prefix}_{secrets.token_urlsafe(24)}"
    webhook_secret = new_webhook_secret()
    record = ApiKey(
        account_id=account_id or uuid.uuid4(),
        name=name,
        prefix=prefix,
        key_hash=hash_key(key),
        webhook_secret=webhook_secret,
        rate_limit_per_minute=(
            settings.default_rate_limit_per_minute if rate_limit_per_minute is None else rate_limit_per_minute
        ),
        max_concurrent_jobs=(
            settings.default_max_concurrent if max_concurrent_jobs is None else max_concurrent_jobs
        ),
        max_duration_s=settings.default_max_duration_s if max_duration_s is None else max_duration_s,
    )
    session.add(record)
    session.flush()
    return IssuedKey(key=key, webhook_secret=webhook_secret, record=record)


class AmbiguousKeyName(Exception):
    """More than one active key has the name given to revoke."""


def revoke_key(session: Session, prefix: str) -> bool:
    """Revoke by prefix (`rdb_...`), by the whole key, or by name when exactly one active key has it."""
    record = repository.by_prefix(session, _prefix_of(prefix) or prefix)
    if record is None and not prefix.startswith(KEY_PREFIX):
        named = repository.active_by_name(session, prefix)
        if len(named) > 1:
            prefixes = ", ".join(key.prefix for key in named)
            raise AmbiguousKeyName(
                f"{len(named)} active keys are named {prefix!r} ({prefixes}); give a prefix"
            )
        record = named[0] if named else None
    if record is None or record.revoked_at is not None:
        return False
    record.revoked_at = utcnow()
    session.flush()
    return True


def rotate_webhook_secret(session: Session, prefix: str) -> str | None:
    """New signing secret; the old one keeps signing beside it for the overlap period."""
    record = repository.by_prefix(session, _prefix_of(prefix) or prefix)
    if record is None:
        return None
    overlap = timedelta(seconds=get_settings().webhook_secret_rotation_overlap_s)
    record.previous_webhook_secret = record.webhook_secret
    record.previous_webhook_secret_expires_at = datetime.now(UTC) + overlap
    record.webhook_secret = new_webhook_secret()
    session.flush()
    return record.webhook_secret


# Authenticated keys are cached briefly (`auth_cache_ttl_s`, 1 s): most requests are polls, and a revocation
# still lands within that second.
_cache: dict[str, tuple[AuthenticatedKey, float]] = {}
_cache_lock = threading.Lock()
_CACHE_MAX_ENTRIES = 10_000


def _prefix_of(key: str) -> str | None:
    parts = key.split("_")
    if len(parts) < 3 or parts[0] + "_" != KEY_PREFIX:
        return None
    return f"{parts[0]}_{parts[1]}"


def cached(key: str) -> AuthenticatedKey | None:
    """The key from the in-process cache, without touching the database."""
    with _cache_lock:
        entry = _cache.get(hash_key(key))
    if entry is not None and entry[1] > time.monotonic():
        return entry[0]
    return None


def authenticate_in_new_session(key: str) -> AuthenticatedKey | None:
    with new_session() as session:
        authenticated = authenticate(session, key)
        session.commit()
        return authenticated


def authenticate(session: Session, key: str) -> AuthenticatedKey | None:
    settings = get_settings()
    digest = hash_key(key)
    now = time.monotonic()
    with _cache_lock:
        entry = _cache.get(digest)
    if entry is not None and entry[1] > now:
        return entry[0]
    prefix = _prefix_of(key)
    if prefix is None:
        return None
    record = repository.by_prefix(session, prefix)
    if record is None or record.revoked_at is not None or not hmac.compare_digest(record.key_hash, digest):
        return None
    repository.touch_last_used(
        session, record.id, utcnow(), timedelta(seconds=settings.last_used_resolution_s)
    )
    authenticated = AuthenticatedKey(
        id=record.id,
        account_id=record.account_id,
        name=record.name,
        prefix=record.prefix,
        rate_limit_per_minute=record.rate_limit_per_minute,
        max_concurrent_jobs=record.max_concurrent_jobs,
        max_duration_s=record.max_duration_s,
        last_used_at=record.last_used_at,
    )
    with _cache_lock:
        if len(_cache) > _CACHE_MAX_ENTRIES:
            _cache.clear()
        _cache[digest] = (authenticated, now + settings.auth_cache_ttl_s)
    return authenticated


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
