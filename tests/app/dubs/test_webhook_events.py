"""`webhook_events` is a short list of distinct event types."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Caller, MediaServer


def _create(client: TestClient, caller: Caller, media_server: MediaServer, events: Any) -> Any:
    body = {
        "video_url": media_server.url("video.mp4"),
        "audio_url": media_server.url("audio.m4a"),
        "webhook_url": media_server.url("hooks/redub"),
        "webhook_events": events,
    }
    return client.post("/v1/dubs", json=body, headers=caller.headers)


@pytest.mark.parametrize(
    "events",
    [
        ["dub.succeeded"] * 200_000,
        ["dub.succeeded", "dub.succeeded"],
        ["dub.succeeded", "dub.failed", "dub.canceled", "dub.progress", "dub.progress"],
    ],
)
def test_long_or_repeated_event_lists_are_refused(
    client: TestClient, caller: Caller, media_server: MediaServer, events: list[str]
) -> None:
    response = _create(client, caller, media_server, events)
    assert response.status_code == 422, response.text[:300]
    body = response.json()
    assert body["code"] == "validation_error"
    assert "webhook_events" in str(body["errors"])
    assert len(response.content) < 4096  # the list is not echoed back


def test_every_event_once_is_accepted(client: TestClient, caller: Caller, media_server: MediaServer) -> None:
    events = ["dub.progress", "dub.succeeded", "dub.failed", "dub.canceled"]
    response = _create(client, caller, media_server, events)
    assert response.status_code == 202, response.text
    assert response.json()["webhook_events"] == events
