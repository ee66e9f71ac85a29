"""The preflight API without waiting on a worker: admission, validation, tenancy, idempotency, OpenAPI."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Caller, MediaServer


def _body(media_server: MediaServer, **extra: Any) -> dict[str, Any]:
    return {"video_url": media_server.url("video.mp4"), "audio_url": media_server.url("audio.m4a"), **extra}


def test_a_preflight_is_accepted_at_once_and_readable_by_its_account_only(
    client: TestClient, caller: Caller, make_caller: Callable[..., Caller], media_server: MediaServer
) -> None:
    created = client.post(
        "/v1/dubs/preflight",
        json=_body(media_server, sync_mode="loop", speakers=[{"track_id": 0}]),
        headers=caller.headers,
    )
    assert created.status_code == 202, created.text
    preflight = created.json()
    assert preflight["object"] == "dub_preflight"
    assert preflight["status"] == "queued" and preflight["report"] is None and preflight["error"] is None
    assert preflight["sync_mode"] == "loop" and preflight["speakers"] == [{"track_id": 0}]
    assert created.headers["location"] == f"/v1/dubs/preflight/{preflight['id']}"
    own = client.get(f"/v1/dubs/preflight/{preflight['id']}", headers=caller.headers)
    assert own.status_code == 200 and own.json()["id"] == preflight["id"]

    stranger = make_caller(rate_limit_per_minute=0)
    for path in (f"/v1/dubs/preflight/{preflight['id']}", f"/v1/dubs/preflight/{uuid.uuid4()}"):
        response = client.get(path, headers=stranger.headers)
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    # A preflight is not a dub: it is neither listed nor readable as one.
    assert client.get(f"/v1/dubs/{preflight['id']}", headers=caller.headers).status_code == 404
    listed = client.get("/v1/dubs", headers=caller.headers).json()["data"]
    assert all(item["id"] != preflight["id"] for item in listed)


def test_a_preflight_takes_the_dub_body_and_its_checks(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    for body, code in [
        (_body(media_server, speakers=[{"track_id": -1}]), "validation_error"),
        (_body(media_server, on_no_face="maybe"), "validation_error"),
        ({"video_url": media_server.url("video.mp4")}, "validation_error"),
        (_body(media_server, video_url="http://169.254.169.254/latest/meta-data/"), "url_not_allowed"),
        ({**_body(media_server), "audio_url": None, "audio_file_id": str(uuid.uuid4())}, "file_not_found"),
    ]:
        response = client.post("/v1/dubs/preflight", json=body, headers=caller.headers)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code
    assert client.get("/v1/dubs/preflight/not-an-id", headers=caller.headers).status_code == 422
    assert client.post("/v1/dubs/preflight", json=_body(media_server)).status_code == 401


def test_preflights_count_against_the_rate_limit(
    client: TestClient, make_caller: Callable[..., Caller], media_server: MediaServer
) -> None:
    limited = make_caller(rate_limit_per_minute=2)
    answers = [
        client.post("/v1/dubs/preflight", json=_body(media_server), headers=limited.headers).status_code
        for _ in range(3)
    ]
    assert answers == [202, 202, 429]


def test_idempotency_key_replays_a_preflight(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    headers = {**caller.headers, "Idempotency-Key": f"preflight-{uuid.uuid4()}"}
    first = client.post("/v1/dubs/preflight", json=_body(media_server), headers=headers)
    again = client.post("/v1/dubs/preflight", json=_body(media_server), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    other = client.post("/v1/dubs/preflight", json=_body(media_server, on_no_face="fail"), headers=headers)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


def test_openapi_documents_the_preflight_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "post" in paths["/v1/dubs/preflight"]
    assert "get" in paths["/v1/dubs/preflight/{preflight_id}"]
    assert paths["/v1/dubs/preflight"]["post"]["description"].startswith("Check a dub request")


def test_a_key_has_at_most_its_limit_of_unfinished_preflights(
    client: TestClient, caller: Caller, make_caller: Callable[..., Caller]
) -> None:
    from sqlalchemy import update

    from app.core.config import get_settings
    from app.core.db import new_session
    from app.models import Preflight

    # A server that takes connections and never answers: a worker fetching from it is held, not finished.
    silent = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/video.mp4"
    body = {"video_url": url, "audio_url": url}
    try:
        limit = get_settings().max_concurrent_preflights_per_key
        assert limit == 2  # the documented default
        held = [client.post("/v1/dubs/preflight", json=body, headers=caller.headers) for _ in range(limit)]
        assert [answer.status_code for answer in held] == [202] * limit
        refused = client.post("/v1/dubs/preflight", json=body, headers=caller.headers)
        assert refused.status_code == 429
        problem = refused.json()
        assert problem["code"] == "preflight_concurrency_limited" and problem["retryable"] is True
        assert int(refused.headers["retry-after"]) > 0
        # Per key: another key of the same account is not held back.
        sibling = make_caller(account_id=caller.account_id, rate_limit_per_minute=0)
        assert client.post("/v1/dubs/preflight", json=body, headers=sibling.headers).status_code == 202
        # An ended preflight frees its slot.
        with new_session() as session:
            ended = uuid.UUID(held[0].json()["id"])
            session.execute(update(Preflight).where(Preflight.id == ended).values(status="failed"))
            session.commit()
        assert client.post("/v1/dubs/preflight", json=body, headers=caller.headers).status_code == 202
    finally:
        silent.close()
