"""A key's public prefix alone never authenticates: the whole key is compared (in constant time)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.conftest import Caller


def test_the_prefix_with_a_wrong_secret_is_refused(
    client: TestClient, make_caller: Callable[..., Caller]
) -> None:
    from app.core.db import new_session
    from app.keys.service import authenticate

    caller = make_caller()
    secret = caller.key.removeprefix(caller.prefix + "_")
    forged = [
        f"{caller.prefix}_{'A' * len(secret)}",
        f"{caller.prefix}_{secret[:-1]}",
        f"{caller.prefix}_",
        f"{caller.prefix}_x",
    ]
    for key in forged:
        response = client.get("/v1/keys/current", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 401, key
        with new_session() as session:
            assert authenticate(session, key) is None
    assert client.get("/v1/keys/current", headers=caller.headers).status_code == 200
