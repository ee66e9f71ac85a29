"""Keys: hashed at rest, revocable, last use recorded."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import Caller


def test_keys_are_stored_only_as_a_keyed_hash(make_caller: Callable[..., Caller]) -> None:
    from app.core.db import new_session
    from app.keys.service import hash_key
    from app.models import ApiKey

    caller = make_caller()
    with new_session() as session:
        record = session.scalars(select(ApiKey).where(ApiKey.prefix == caller.prefix)).one()
    assert caller.key.startswith(caller.prefix + "_")
    assert record.key_hash == hash_key(caller.key)
    assert caller.key not in (record.key_hash, record.prefix, record.name)
    assert caller.webhook_secret.startswith("whsec_")


def test_revoked_keys_are_refused_and_last_use_is_recorded(
    client: TestClient, make_caller: Callable[..., Caller]
) -> None:
    from app.core.db import new_session
    from app.keys.service import clear_cache, revoke_key
    from app.models import ApiKey

    caller = make_caller(rate_limit_per_minute=0)
    assert client.get("/v1/dubs", headers=caller.headers).status_code == 200
    with new_session() as session:
        record = session.scalars(select(ApiKey).where(ApiKey.prefix == caller.prefix)).one()
        assert record.last_used_at is not None
        assert revoke_key(session, caller.prefix)
        session.commit()
    clear_cache()  # the API caches keys for a few seconds; this test does not wait them out
    response = client.get("/v1/dubs", headers=caller.headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_a_new_key_has_the_documented_shape_and_the_default_limits(service_env: dict[str, str]) -> None:
    from app.core.config import get_settings
    from app.core.db import new_session
    from app.keys.service import create_key

    settings = get_settings()
    account = uuid.uuid4()
    with new_session() as session:
        issued = create_key(session, "shaped", account_id=account)
        record = issued.record
        assert re.fullmatch(r"rdb_[0-9a-f]{12}_[A-Za-z0-9_-]{32}", issued.key)
        assert record.prefix == issued.key[:16] and record.account_id == account and record.name == "shaped"
        assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", issued.webhook_secret)
        assert record.webhook_secret == issued.webhook_secret
        assert (record.rate_limit_per_minute, record.max_concurrent_jobs, record.max_duration_s) == (
            settings.default_rate_limit_per_minute,
            settings.default_max_concurrent,
            settings.default_max_duration_s,
        )
        limited = create_key(
            session, "limited", rate_limit_per_minute=7, max_concurrent_jobs=2, max_duration_s=9.5
        )
        assert (limited.record.rate_limit_per_minute, limited.record.max_concurrent_jobs) == (7, 2)
        assert limited.record.max_duration_s == 9.5 and limited.record.account_id != account
        zero = create_key(session, "zero", rate_limit_per_minute=0, max_concurrent_jobs=0, max_duration_s=0.0)
        assert (
            zero.record.rate_limit_per_minute,
            zero.record.max_concurrent_jobs,
            zero.record.max_duration_s,
        ) == (
            0,
            0,
            0.0,
        )


def test_revoke_by_prefix_whole_key_or_unique_name(service_env: dict[str, str]) -> None:
    from app.core.db import new_session
    from app.keys.service import AmbiguousKeyName, create_key, revoke_key

    name = f"shared-{uuid.uuid4().hex[:6]}"
    with new_session() as session:
        by_prefix, by_key, first_named, second_named = (create_key(session, name) for _ in range(4))
        assert revoke_key(session, by_prefix.record.prefix) and by_prefix.record.revoked_at is not None
        assert not revoke_key(session, by_prefix.record.prefix)  # already revoked
        assert revoke_key(session, by_key.key) and by_key.record.revoked_at is not None
        with pytest.raises(AmbiguousKeyName) as ambiguous:
            revoke_key(session, name)
        prefixes = f"{first_named.record.prefix}, {second_named.record.prefix}"
        assert str(ambiguous.value) == f"2 active keys are named {name!r} ({prefixes}); give a prefix"
        assert first_named.record.revoked_at is None and second_named.record.revoked_at is None
        assert revoke_key(session, first_named.record.prefix)
        assert revoke_key(session, name) and second_named.record.revoked_at is not None  # the one left active
        assert not revoke_key(session, name)
        assert not revoke_key(session, "rdb_000000000000") and not revoke_key(session, "nobody")
        # A name that looks like a key is never looked up as a name.
        create_key(session, "rdb_lookalike")
        assert not revoke_key(session, "rdb_lookalike")


def test_rotating_keeps_the_old_secret_for_the_overlap(service_env: dict[str, str]) -> None:
    from app.core.config import get_settings
    from app.core.db import new_session
    from app.keys.service import create_key, rotate_webhook_secret

    overlap = timedelta(seconds=get_settings().webhook_secret_rotation_overlap_s)
    with new_session() as session:
        issued = create_key(session, "rotating")
        started = datetime.now(UTC)
        new = rotate_webhook_secret(session, issued.key)
        record = issued.record
        assert new is not None and new.startswith("whsec_") and new != issued.webhook_secret
        assert (record.webhook_secret, record.previous_webhook_secret) == (new, issued.webhook_secret)
        expires = record.previous_webhook_secret_expires_at
        assert expires is not None and started + overlap <= expires <= datetime.now(UTC) + overlap
        assert rotate_webhook_secret(session, record.prefix) not in (None, new)
        assert rotate_webhook_secret(session, "rdb_000000000000") is None


def test_an_authenticated_key_is_cached_for_its_ttl_only(service_env: dict[str, str]) -> None:
    from app.core.db import new_session
    from app.keys.service import authenticate, authenticate_in_new_session, cached, clear_cache, create_key
    from app.models import ApiKey

    with new_session() as session:
        issued = create_key(session, "cached", rate_limit_per_minute=5)
        session.commit()
    clear_cache()
    assert cached(issued.key) is None
    authenticated = authenticate_in_new_session(issued.key)
    assert authenticated is not None and authenticated.prefix == issued.record.prefix
    assert authenticated.rate_limit_per_minute == 5 and authenticated.account_id == issued.record.account_id
    assert cached(issued.key) == authenticated
    with new_session() as session:  # committed: the last use is stored
        assert session.scalars(select(ApiKey.last_used_at).where(ApiKey.prefix == issued.record.prefix)).one()
    with new_session() as session:
        assert authenticate(session, "not-a-key") is None and authenticate(session, "rdb_x") is None
    clear_cache()
    assert cached(issued.key) is None
