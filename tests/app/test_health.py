from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient


def test_healthz_answers_without_touching_services(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_reports_database_broker_and_storage(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}


def test_openapi_is_3_1_and_lists_the_dub_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert {"/v1/dubs", "/v1/dubs/{dub_id}", "/v1/dubs/{dub_id}/cancel", "/v1/dubs/{dub_id}/output"} <= set(
        spec["paths"]
    )
    assert client.get("/docs").status_code == 200


def test_unknown_route_is_a_problem_document(client: TestClient) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


def test_readyz_checks_once_per_interval(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.health import service

    calls: dict[str, int] = {}

    def counted(name: str, check: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            calls[name] = calls.get(name, 0) + 1
            check()

        return run

    monkeypatch.setattr(
        service, "CHECKS", {name: counted(name, check) for name, check in service.CHECKS.items()}
    )
    monkeypatch.setattr(service, "_cached", None)
    # A long interval, so the count does not depend on how fast this machine is.
    monkeypatch.setattr(service, "READINESS_MAX_AGE_S", 3600.0)
    for _ in range(20):
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}
    assert calls == {"database": 1, "broker": 1, "storage": 1}
    # And with no reuse every call checks again, so the count above is the cache's doing.
    monkeypatch.setattr(service, "READINESS_MAX_AGE_S", 0.0)
    for _ in range(3):
        client.get("/readyz")
    assert calls == {"database": 4, "broker": 4, "storage": 4}
