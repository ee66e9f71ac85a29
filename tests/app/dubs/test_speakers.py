"""`speakers` and `on_no_face` on POST /v1/dubs: clear 422s, stored, echoed, part of idempotency."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Caller, MediaServer

PINS = [
    {"track_id": 2},
    {"point": {"frame": 10, "x": 120.5, "y": 80}},
    {"boxes": [{"frame": 0, "x": 10, "y": 20, "width": 64, "height": 80}]},
]


def _body(media_server: MediaServer, **extra: Any) -> dict[str, Any]:
    return {"video_url": media_server.url("video.mp4"), "audio_url": media_server.url("audio.m4a"), **extra}


def test_speakers_and_no_face_policy_are_stored_and_echoed(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    created = client.post(
        "/v1/dubs", json=_body(media_server, speakers=PINS, on_no_face="fail"), headers=caller.headers
    )
    assert created.status_code == 202, created.text
    job = created.json()
    expected = [
        {"track_id": 2},
        {"point": {"frame": 10, "x": 120.5, "y": 80.0}},
        {"boxes": [{"frame": 0, "x": 10.0, "y": 20.0, "width": 64.0, "height": 80.0}]},
    ]
    assert job["speakers"] == expected and job["on_no_face"] == "fail"
    # Nothing analysed or rendered yet.
    assert job["analysis"] is None and job["frames_rendered"] is None
    fetched = client.get(f"/v1/dubs/{job['id']}", headers=caller.headers).json()
    assert fetched["speakers"] == expected and fetched["on_no_face"] == "fail"
    listed = client.get("/v1/dubs", headers=caller.headers).json()["data"]
    assert next(item for item in listed if item["id"] == job["id"])["speakers"] == expected


def test_defaults_are_whoever_speaks_and_passthrough(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    job = client.post("/v1/dubs", json=_body(media_server), headers=caller.headers).json()
    assert job["speakers"] is None and job["on_no_face"] == "passthrough"


def test_bad_speakers_are_422_problems_that_name_the_field(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    cases: list[tuple[Any, str]] = [
        ([], "speakers"),  # an empty list pins nobody: omit the field instead
        ([{}], "needs exactly one"),
        ([{"track_id": 1, "point": {"frame": 0, "x": 1, "y": 1}}], "needs exactly one"),
        ([{"track_id": -1}], "track_id"),
        ([{"track_id": "1"}], "track_id"),
        ([{"track_id": True}], "track_id"),
        ([{"track_id": 1.5}], "track_id"),
        ([{"point": {"frame": 0, "x": 5}}], "point"),
        ([{"point": {"frame": -3, "x": 5, "y": 5}}], "point"),
        ([{"boxes": []}], "boxes"),
        ([{"boxes": [{"frame": 0, "x": 0, "y": 0, "width": 0, "height": 10}]}], "boxes"),
        ([{"name": "Ana"}], "name"),
        ([{"track_id": index} for index in range(21)], "speakers"),
        ({"track_id": 1}, "speakers"),
    ]
    for speakers, mentioned in cases:
        response = client.post(
            "/v1/dubs", json=_body(media_server, speakers=speakers), headers=caller.headers
        )
        assert response.status_code == 422, (speakers, response.text)
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert mentioned in response.text, (speakers, response.text)
    response = client.post("/v1/dubs", json=_body(media_server, on_no_face="skip"), headers=caller.headers)
    assert response.status_code == 422 and "on_no_face" in response.text


def test_idempotency_counts_speakers_and_no_face_policy_as_part_of_the_body(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    headers = {**caller.headers, "Idempotency-Key": f"pins-{uuid.uuid4()}"}
    first = client.post("/v1/dubs", json=_body(media_server, speakers=[{"track_id": 0}]), headers=headers)
    assert first.status_code == 202
    again = client.post("/v1/dubs", json=_body(media_server, speakers=[{"track_id": 0}]), headers=headers)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    for changed in ({"speakers": [{"track_id": 1}]}, {"speakers": None}, {"on_no_face": "fail"}):
        body = {**_body(media_server, speakers=[{"track_id": 0}]), **changed}
        response = client.post("/v1/dubs", json=body, headers=headers)
        assert response.status_code == 422 and response.json()["code"] == "idempotency_key_reused", changed
