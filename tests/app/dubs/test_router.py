"""The dubs API without a worker: admission, validation, tenancy, pagination, idempotency, cancel."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Caller, MediaServer


def _body(media_server: MediaServer, **extra: Any) -> dict[str, Any]:
    return {
        "video_url": media_server.url("video.mp4"),
        "audio_url": media_server.url("audio.m4a"),
        **extra,
    }


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    return body


def test_create_answers_202_with_the_queued_job(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    response = client.post(
        "/v1/dubs",
        json=_body(media_server, sync_mode="loop", metadata={"order": "A-17", "take": 3}),
        headers=caller.headers,
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued"
    assert job["sync_mode"] == "loop"
    assert job["metadata"] == {"order": "A-17", "take": 3}
    assert job["output"] is None and job["error"] is None
    assert response.headers["location"] == f"/v1/dubs/{job['id']}"
    fetched = client.get(f"/v1/dubs/{job['id']}", headers=caller.headers).json()
    assert fetched["id"] == job["id"] and fetched["metadata"] == job["metadata"]


def test_requests_need_a_valid_key(client: TestClient, caller: Caller) -> None:
    _problem(client.get("/v1/dubs"), 401, "unauthorized")
    _problem(client.get("/v1/dubs", headers={"Authorization": "Bearer rdb_nope_nope"}), 401, "unauthorized")
    _problem(client.get("/v1/dubs", headers={"Authorization": caller.key}), 401, "unauthorized")
    assert client.get("/v1/dubs", headers=caller.headers).status_code == 200


def test_bad_bodies_are_422_problems(client: TestClient, caller: Caller, media_server: MediaServer) -> None:
    cases = [
        {"audio_url": media_server.url("audio.m4a")},
        {**_body(media_server), "video_file_id": str(uuid.uuid4())},
        {**_body(media_server), "sync_mode": "stretch"},
        {**_body(media_server), "metadata": {f"k{index}": index for index in range(51)}},
        {**_body(media_server), "unknown_field": 1},
    ]
    for body in cases:
        problem = _problem(
            client.post("/v1/dubs", json=body, headers=caller.headers), 422, "validation_error"
        )
        assert problem["errors"]
    _problem(
        client.post("/v1/dubs", content=b"{not json", headers=caller.headers), 415, "unsupported_media_type"
    )
    json_headers = {**caller.headers, "Content-Type": "application/json"}
    _problem(client.post("/v1/dubs", content=b"{not json", headers=json_headers), 400, "invalid_json")


def test_unsafe_urls_are_refused_at_admission(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    for field, value in [
        ("video_url", "http://169.254.169.254/latest/meta-data/"),
        ("audio_url", "file:///etc/passwd"),
    ]:
        problem = _problem(
            client.post("/v1/dubs", json={**_body(media_server), field: value}, headers=caller.headers),
            422,
            "url_not_allowed",
        )
        assert problem["param"] == field
    _problem(
        client.post(
            "/v1/dubs",
            json=_body(media_server, webhook_url="http://169.254.169.254/hook"),
            headers=caller.headers,
        ),
        422,
        "webhook_url_not_allowed",
    )


def test_another_account_cannot_see_or_touch_a_job(
    client: TestClient, caller: Caller, make_caller: Callable[..., Caller], media_server: MediaServer
) -> None:
    job = client.post("/v1/dubs", json=_body(media_server), headers=caller.headers).json()
    stranger = make_caller(rate_limit_per_minute=0)
    for method, path in [
        ("GET", f"/v1/dubs/{job['id']}"),
        ("POST", f"/v1/dubs/{job['id']}/cancel"),
        ("GET", f"/v1/dubs/{job['id']}/output"),
        ("GET", f"/v1/dubs/{job['id']}/webhook_deliveries"),
    ]:
        _problem(client.request(method, path, headers=stranger.headers), 404, "not_found")
    listed = client.get("/v1/dubs", headers=stranger.headers).json()
    assert job["id"] not in [item["id"] for item in listed["data"]]
    # A missing id and a foreign id look the same.
    _problem(client.get(f"/v1/dubs/{uuid.uuid4()}", headers=stranger.headers), 404, "not_found")


def test_list_pages_with_a_cursor_newest_first(
    client: TestClient, make_caller: Callable[..., Caller], media_server: MediaServer
) -> None:
    owner = make_caller(rate_limit_per_minute=0, max_concurrent_jobs=0)
    created = [
        client.post("/v1/dubs", json=_body(media_server), headers=owner.headers).json()["id"]
        for _ in range(5)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/dubs", params=params, headers=owner.headers).json()
        seen += [item["id"] for item in page["data"]]
        assert len(page["data"]) <= 2
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert seen == list(reversed(created))
    _problem(
        client.get("/v1/dubs", params={"cursor": "garbage"}, headers=owner.headers), 400, "invalid_cursor"
    )
    _problem(
        client.get("/v1/dubs", params={"status": "weird"}, headers=owner.headers), 422, "validation_error"
    )


def test_idempotency_key_replays_the_first_answer(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    headers = {**caller.headers, "Idempotency-Key": f"order-{uuid.uuid4()}"}
    first = client.post("/v1/dubs", json=_body(media_server, metadata={"a": 1}), headers=headers)
    assert first.status_code == 202
    assert first.headers["idempotent-replayed"] == "false"
    # Same body, keys in another order: the same request.
    again = client.post(
        "/v1/dubs",
        json={
            "metadata": {"a": 1},
            "audio_url": media_server.url("audio.m4a"),
            "video_url": media_server.url("video.mp4"),
        },
        headers=headers,
    )
    assert again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    _problem(
        client.post("/v1/dubs", json=_body(media_server, metadata={"a": 2}), headers=headers),
        422,
        "idempotency_key_reused",
    )
    listed = client.get("/v1/dubs", params={"limit": 100}, headers=caller.headers).json()["data"]
    assert [item["id"] for item in listed].count(first.json()["id"]) == 1
    assert len(listed) == 1


def test_idempotency_keys_are_per_account(
    client: TestClient, make_caller: Callable[..., Caller], media_server: MediaServer
) -> None:
    key = f"shared-{uuid.uuid4()}"
    first, second = make_caller(rate_limit_per_minute=0), make_caller(rate_limit_per_minute=0)
    one = client.post("/v1/dubs", json=_body(media_server), headers={**first.headers, "Idempotency-Key": key})
    two = client.post(
        "/v1/dubs", json=_body(media_server), headers={**second.headers, "Idempotency-Key": key}
    )
    assert one.json()["id"] != two.json()["id"]
    assert two.headers["idempotent-replayed"] == "false"


def test_a_failed_request_does_not_burn_its_idempotency_key(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    headers = {**caller.headers, "Idempotency-Key": f"k-{uuid.uuid4()}"}
    bad = _body(media_server, video_url="http://169.254.169.254/")
    _problem(client.post("/v1/dubs", json=bad, headers=headers), 422, "url_not_allowed")
    assert client.post("/v1/dubs", json=bad, headers=headers).status_code == 422
    good = client.post("/v1/dubs", json=_body(media_server), headers={**headers, "Idempotency-Key": "x y"})
    _problem(good, 400, "invalid_idempotency_key")


def test_rate_limit_per_key_with_headers(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    limited = make_caller(rate_limit_per_minute=3)
    answers = [client.post("/v1/dubs", json={}, headers=limited.headers) for _ in range(4)]
    assert [answer.status_code for answer in answers[:3]] == [422, 422, 422]
    assert answers[0].headers["ratelimit-limit"] == "3"
    assert answers[2].headers["ratelimit-remaining"] == "0"
    problem = _problem(answers[3], 429, "rate_limited")
    assert problem["retryable"] is True
    assert int(answers[3].headers["retry-after"]) >= 1


def test_concurrency_limit_has_its_own_code(
    client: TestClient, make_caller: Callable[..., Caller], media_server: MediaServer
) -> None:
    limited = make_caller(rate_limit_per_minute=0, max_concurrent_jobs=2)
    for _ in range(2):
        assert client.post("/v1/dubs", json=_body(media_server), headers=limited.headers).status_code == 202
    response = client.post("/v1/dubs", json=_body(media_server), headers=limited.headers)
    _problem(response, 429, "concurrency_limited")
    assert response.headers["x-concurrency-limit"] == "2"


def test_cancel_a_queued_job_and_cancel_is_idempotent(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    job = client.post("/v1/dubs", json=_body(media_server), headers=caller.headers).json()
    canceled = client.post(f"/v1/dubs/{job['id']}/cancel", headers=caller.headers)
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"
    assert canceled.json()["error"]["code"] == "canceled"
    assert client.post(f"/v1/dubs/{job['id']}/cancel", headers=caller.headers).json()["status"] == "canceled"
    _problem(client.get(f"/v1/dubs/{job['id']}/output", headers=caller.headers), 409, "output_not_ready")
    listed = client.get("/v1/dubs", params={"status": "canceled"}, headers=caller.headers).json()
    assert [item["id"] for item in listed["data"]] == [job["id"]]


def test_key_shows_its_limits(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    limited = make_caller(rate_limit_per_minute=7, max_concurrent_jobs=2, max_duration_s=30)
    body = client.get("/v1/keys/current", headers=limited.headers).json()
    assert body["prefix"] == limited.prefix
    assert body["limits"] == {"rate_limit_per_minute": 7, "max_concurrent_jobs": 2, "max_duration_s": 30.0}
