"""The client under test talks HTTP to a real API server (`api_url`: uvicorn in a subprocess, with the same
REDUB_* settings, database, Redis, object storage and Celery worker as the rest of the service tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redub_client

from tests.conftest import Caller


@pytest.fixture
def account(make_caller: Callable[..., Caller]) -> Caller:
    """A fresh account without limits: its list holds only this test's dubs."""
    return make_caller(rate_limit_per_minute=0, max_concurrent_jobs=0)


@pytest.fixture
def redub(api_url: str, account: Caller) -> Iterator[redub_client.Redub]:
    with redub_client.Redub(api_key=account.key, base_url=api_url, timeout=30) as client:
        yield client
