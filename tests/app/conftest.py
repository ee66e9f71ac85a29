from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient


@dataclass(frozen=True)
class Caller:
    key: str
    webhook_secret: str
    account_id: uuid.UUID
    prefix: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="session")
def client(service_env: dict[str, str]) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def make_caller(service_env: dict[str, str]) -> Callable[..., Caller]:
    from app.core.db import new_session
    from app.keys.service import create_key

    def make(**limits: Any) -> Caller:
        with new_session() as session:
            issued = create_key(session, f"test-{uuid.uuid4().hex[:6]}", **limits)
            session.commit()
            return Caller(issued.key, issued.webhook_secret, issued.record.account_id, issued.record.prefix)

    return make


@pytest.fixture
def caller(make_caller: Callable[..., Caller]) -> Caller:
    return make_caller(rate_limit_per_minute=0, max_concurrent_jobs=0)


def wait_for_status(
    client: TestClient, caller: Caller, dub_id: str, statuses: set[str], timeout_s: float = 90
) -> dict[str, Any]:
    """Poll the API as a customer would until the dub reaches one of `statuses`."""
    deadline = time.monotonic() + timeout_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/v1/dubs/{dub_id}", headers=caller.headers).json()
        if body.get("status") in statuses:
            return body
        time.sleep(0.2)
    raise AssertionError(f"dub {dub_id} stayed {body.get('status')}: {body}")
