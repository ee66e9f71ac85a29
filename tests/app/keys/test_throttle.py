"""Failed authentication is limited per client address: past the limit, the address gets 429 with
Retry-After whatever key it sends, and other addresses are not affected."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Caller

LIMIT = 3


@pytest.fixture
def low_limit(monkeypatch: pytest.MonkeyPatch, service_env: dict[str, str]) -> Iterator[None]:
    from app.core.config import get_settings

    monkeypatch.setenv("REDUB_AUTH_FAILURES_PER_MINUTE", str(LIMIT))
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _from_address(client: TestClient) -> TestClient:
    # An address of its own (in the IPv6 documentation prefix), so no other test's failures count here.
    address = f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"
    return TestClient(client.app, client=(address, 50000), raise_server_exceptions=False)


def test_wrong_keys_from_one_address_are_refused_after_the_limit(
    client: TestClient, caller: Caller, low_limit: None
) -> None:
    attacker = _from_address(client)
    wrong = {"Authorization": f"Bearer {caller.prefix}_{'x' * 40}"}
    answers = [attacker.get("/v1/keys/current", headers=wrong) for _ in range(LIMIT)]
    assert [answer.status_code for answer in answers] == [401] * LIMIT
    refused = attacker.get("/v1/keys/current", headers=wrong)
    assert refused.status_code == 429
    problem = refused.json()
    assert problem["code"] == "too_many_failed_authentications" and problem["retryable"] is True
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Blocked means blocked: a right key from that address is refused too, or guessing would go on.
    assert attacker.get("/v1/keys/current", headers=caller.headers).status_code == 429
    # Another address is not held back, and right keys do not count as failures.
    assert client.get("/v1/keys/current", headers=caller.headers).status_code == 200
    for _ in range(LIMIT + 1):
        assert _from_address(client).get("/v1/keys/current", headers=caller.headers).status_code == 200


def test_a_missing_key_is_not_counted_as_a_guess(client: TestClient, low_limit: None) -> None:
    visitor = _from_address(client)
    for _ in range(LIMIT + 2):
        assert visitor.get("/v1/keys/current").status_code == 401
