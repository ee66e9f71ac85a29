"""What an integrator meets first: bad numbers, error shapes, retryable flags, headers, echoed fields."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Caller, MediaServer


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
