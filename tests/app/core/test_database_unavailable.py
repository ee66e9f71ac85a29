"""While the database cannot be reached, every request that needs it is a 503 `database_unavailable` with
`Retry-After`, never a 500; the same app answers normally once the database is back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Caller, free_port


@pytest.fixture
def app_client(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from app.core.config import get_settings
    from app.main import create_app

    # A key checked once stays trusted for a minute: requests get past authentication to their own reads.
    monkeypatch.setenv("REDUB_AUTH_CACHE_TTL_S", "60")
    get_settings.cache_clear()
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client
    get_settings.cache_clear()


def _unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.config import get_settings

    # A port nothing listens on: the driver's connection is refused, as during a restart.
    monkeypatch.setenv("REDUB_DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/redub")
    get_settings.cache_clear()


def _assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert (body["code"], body["retryable"]) == ("database_unavailable", True)


def test_a_new_key_is_refused_with_503_not_500(
    app_client: TestClient, caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    _unreachable(monkeypatch)
    _assert_unavailable(app_client.get("/v1/dubs", headers=caller.headers))


def test_reads_and_writes_of_a_known_key_get_503_and_recover(
    app_client: TestClient, caller: Caller, service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.config import get_settings

    assert app_client.get("/v1/dubs", headers=caller.headers).status_code == 200
    _unreachable(monkeypatch)
    poll = app_client.get(f"/v1/dubs/{uuid.uuid4()}", headers=caller.headers)  # the async read path
    _assert_unavailable(poll)
    _assert_unavailable(app_client.get("/v1/dubs", headers=caller.headers))
    created = app_client.post(
        "/v1/dubs",
        json={"video_url": "https://example.com/v.mp4", "audio_url": "https://example.com/a.m4a"},
        headers={**caller.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    _assert_unavailable(created)
    monkeypatch.setenv("REDUB_DATABASE_URL", service_env["REDUB_DATABASE_URL"])
    get_settings.cache_clear()
    assert app_client.get("/v1/dubs", headers=caller.headers).status_code == 200


def test_the_openapi_document_declares_the_503(app_client: TestClient) -> None:
    spec = app_client.get("/openapi.json").json()
    answer = spec["paths"]["/v1/dubs"]["post"]["responses"]["503"]
    assert "Retry-After" in answer["headers"]
