"""Keys: hashed at rest, revocable, last use recorded."""

from __future__ import annotations

from collections.abc import Callable

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
