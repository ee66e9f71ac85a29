"""What an integrator meets first: bad numbers, error shapes, retryable flags, headers, echoed fields."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Caller, MediaServer, WebhookReceiver


def _body(media_server: MediaServer, **extra: Any) -> dict[str, Any]:
    return {"video_url": media_server.url("video.mp4"), "audio_url": media_server.url("audio.m4a"), **extra}


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def _raw_post(client: TestClient, caller: Caller, text: str, path: str = "/v1/dubs") -> Any:
    return client.post(
        path, content=text.encode(), headers={**caller.headers, "Content-Type": "application/json"}
    )


def test_non_finite_and_huge_numbers_are_422_at_request_time(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    video, audio = media_server.url("video.mp4"), media_server.url("audio.m4a")
    start = f'{{"video_url": "{video}", "audio_url": "{audio}", '
    for path in ("/v1/dubs", "/v1/dubs/preflight"):
        for tail, field in [
            ('"metadata": {"a": 1e400}}', "metadata"),
            ('"metadata": {"a": NaN}}', "metadata"),
            ('"metadata": {"a": -Infinity}}', "metadata"),
            ('"metadata": {"a": 123456789012345678901234567890}}', "metadata"),
            ('"speakers": [{"point": {"frame": 1, "x": 1e400, "y": 3}}]}', "speakers"),
            ('"speakers": [{"point": {"frame": 1, "x": NaN, "y": 3}}]}', "speakers"),
            ('"speakers": [{"track_id": 1' + "0" * 300 + "}]}", "speakers"),
            ('"speakers": [{"point": {"frame": 1' + "0" * 30 + ', "x": 1, "y": 3}}]}', "speakers"),
            (
                '"speakers": [{"boxes": [{"frame": 0, "x": 0, "y": 0, "width": Infinity, "height": 1}]}]}',
                "speakers",
            ),
        ]:
            problem = _problem(_raw_post(client, caller, start + tail, path), 422, "validation_error")
            assert problem["errors"][0]["loc"][1] == field, problem
            assert len(problem["detail"]) < 300 and all(len(e["message"]) < 300 for e in problem["errors"])


def test_error_shapes_are_one_documented_shape(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    malformed = _problem(_raw_post(client, caller, '{"video_url": '), 400, "invalid_json")
    assert malformed["errors"][0]["loc"][0] == "body"
    as_text = client.post(
        "/v1/dubs",
        content=b'{"video_url": "x"}',
        headers={**caller.headers, "Content-Type": "text/plain"},
    )
    _problem(as_text, 415, "unsupported_media_type")
    # A missing or doubled source names its field, in `errors[].loc` and in `param`.
    missing = _problem(
        client.post("/v1/dubs", json={"audio_url": media_server.url("audio.m4a")}, headers=caller.headers),
        422,
        "validation_error",
    )
    assert missing["errors"][0]["loc"] == ["body", "video_url"]
    assert missing["param"] == "video_url"
    nested = _problem(
        client.post(
            "/v1/dubs",
            json=_body(media_server, speakers=[{"point": {"frame": 0, "x": -1, "y": 0}}]),
            headers=caller.headers,
        ),
        422,
        "validation_error",
    )
    assert nested["param"] == "speakers.0.point.x"
    # Field-specific refusals from the service carry the same two keys.
    refused = _problem(
        client.post(
            "/v1/dubs", json=_body(media_server, video_url="file:///etc/passwd"), headers=caller.headers
        ),
        422,
        "url_not_allowed",
    )
    assert refused["param"] == "video_url"
    assert refused["errors"] == [
        {"loc": ["body", "video_url"], "message": refused["detail"], "type": "url_not_allowed"}
    ]


def test_an_idempotency_key_reused_on_another_endpoint_says_so(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    headers = {**caller.headers, "Idempotency-Key": f"cross-{uuid.uuid4()}"}
    assert client.post("/v1/dubs", json=_body(media_server), headers=headers).status_code == 202
    problem = _problem(
        client.post("/v1/dubs/preflight", json=_body(media_server), headers=headers),
        422,
        "idempotency_key_reused",
    )
    assert "POST /v1/dubs" in problem["detail"] and "body" not in problem["detail"]


def test_output_not_ready_is_retryable_only_while_the_dub_can_still_finish(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    job = client.post("/v1/dubs", json=_body(media_server), headers=caller.headers).json()
    queued = _problem(
        client.get(f"/v1/dubs/{job['id']}/output", headers=caller.headers), 409, "output_not_ready"
    )
    assert queued["retryable"] is True
    client.post(f"/v1/dubs/{job['id']}/cancel", headers=caller.headers)
    canceled = _problem(
        client.get(f"/v1/dubs/{job['id']}/output", headers=caller.headers), 409, "output_not_ready"
    )
    assert canceled["retryable"] is False


def test_rate_limit_headers_on_every_authenticated_answer_and_reads_have_their_own_budget(
    client: TestClient, make_caller: Callable[..., Caller], media_server: MediaServer
) -> None:
    limited = make_caller(rate_limit_per_minute=3, max_concurrent_jobs=0)
    created = client.post("/v1/dubs", json=_body(media_server), headers=limited.headers)
    assert created.status_code == 202
    assert created.headers["ratelimit-limit"] == "3" and created.headers["ratelimit-remaining"] == "2"
    read = client.get(f"/v1/dubs/{created.json()['id']}", headers=limited.headers)
    missing = client.get(f"/v1/dubs/{uuid.uuid4()}", headers=limited.headers)
    assert missing.status_code == 404
    # Reads count against their own, larger bucket: ten times the key's limit.
    assert read.headers["ratelimit-limit"] == missing.headers["ratelimit-limit"] == "30"
    assert read.headers["ratelimit-remaining"] == "29" and missing.headers["ratelimit-remaining"] == "28"
    for _ in range(20):
        assert client.get(f"/v1/dubs/{created.json()['id']}", headers=limited.headers).status_code == 200
    # ... so polling did not spend the creates' budget.
    again = client.post("/v1/dubs", json=_body(media_server), headers=limited.headers)
    assert again.status_code == 202 and again.headers["ratelimit-remaining"] == "1"
    refused = client.post("/v1/dubs", json={}, headers=limited.headers)
    assert refused.status_code == 422 and refused.headers["ratelimit-remaining"] == "0"
    # Unlimited keys are not counted, and no made-up limit is sent (as the README says).
    unlimited = make_caller(rate_limit_per_minute=0)
    assert "ratelimit-limit" not in client.get("/v1/dubs", headers=unlimited.headers).headers


def test_webhook_events_are_kept_as_given_and_the_job_echoes_its_webhook_url(
    client: TestClient, caller: Caller, media_server: MediaServer, webhook_receiver: WebhookReceiver
) -> None:
    hook = webhook_receiver.url("hooks/echoed")
    # An empty list is refused next to a URL (it would send nothing) rather than replaced by the defaults.
    problem = _problem(
        client.post(
            "/v1/dubs", json=_body(media_server, webhook_url=hook, webhook_events=[]), headers=caller.headers
        ),
        422,
        "validation_error",
    )
    assert problem["param"] == "webhook_events"
    quiet = client.post(
        "/v1/dubs", json=_body(media_server, webhook_events=[]), headers=caller.headers
    ).json()
    assert quiet["webhook_events"] == [] and quiet["webhook_url"] is None
    job = client.post(
        "/v1/dubs",
        json=_body(media_server, webhook_url=hook, webhook_events=["dub.failed"]),
        headers=caller.headers,
    ).json()
    assert job["webhook_url"] == hook and job["webhook_events"] == ["dub.failed"]
    polled = client.get(f"/v1/dubs/{job['id']}", headers=caller.headers).json()
    assert polled["webhook_url"] == hook
    listed = client.get("/v1/dubs", headers=caller.headers).json()["data"]
    assert {item["id"]: item["webhook_url"] for item in listed}[job["id"]] == hook


def test_a_refused_loopback_url_names_the_setting_that_allows_it(
    client: TestClient, caller: Caller, media_server: MediaServer, monkeypatch: Any
) -> None:
    from app.core.config import get_settings

    monkeypatch.setenv("REDUB_ALLOW_PRIVATE_URLS", "false")
    get_settings.cache_clear()
    try:
        response = client.post("/v1/dubs", json=_body(media_server), headers=caller.headers)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    problem = _problem(response, 422, "url_not_allowed")
    assert "REDUB_ALLOW_PRIVATE_URLS=true" in problem["detail"]


def test_the_job_links_to_itself_and_carries_its_timing(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    job = client.post("/v1/dubs", json=_body(media_server), headers=caller.headers).json()
    links = job["links"]
    assert links["self"].endswith(f"/v1/dubs/{job['id']}")
    assert links["cancel"] == links["self"] + "/cancel" and links["output"] == links["self"] + "/output"
    assert job["completed_at"] is None and job["timing"]["total_s"] is None
    path = links["cancel"].split("://", 1)[1].split("/", 1)[1]
    canceled = client.post("/" + path, headers=caller.headers).json()
    polled = client.get(f"/v1/dubs/{job['id']}", headers=caller.headers).json()
    for view in (canceled, polled):
        assert view["completed_at"] is not None
        assert view["timing"]["total_s"] is not None and view["timing"]["total_s"] >= 0
        assert view["links"] == links


def test_a_queued_dub_shows_its_place_in_the_queue(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    job = client.post("/v1/dubs", json=_body(media_server), headers=caller.headers).json()
    polled = client.get(f"/v1/dubs/{job['id']}", headers=caller.headers).json()
    if polled["status"] == "queued":  # a worker of another test may have taken it already
        assert isinstance(polled["queue_position"], int) and polled["queue_position"] >= 1
    client.post(f"/v1/dubs/{job['id']}/cancel", headers=caller.headers)
    assert client.get(f"/v1/dubs/{job['id']}", headers=caller.headers).json()["queue_position"] is None
