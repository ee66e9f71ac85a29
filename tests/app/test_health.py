from __future__ import annotations

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
