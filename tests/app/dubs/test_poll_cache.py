"""The per-process poll cache stays exact: a change made elsewhere (as a worker does) shows on the next
polls once PostgreSQL's notification arrives, and a cached row is never shown to another account."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.conftest import Caller, MediaServer


def _create(client: TestClient, caller: Caller, media_server: MediaServer) -> str:
    body = {"video_url": media_server.url("video.mp4"), "audio_url": media_server.url("audio.m4a")}
    dub_id: str = client.post("/v1/dubs", json=body, headers=caller.headers).json()["id"]
    return dub_id


def _cached_ids() -> set[uuid.UUID]:
    from app.dubs import poll_cache

    return {job_id for cache in poll_cache._caches.values() for job_id in cache.rows}


def _poll_until(
    client: TestClient, caller: Caller, dub_id: str, check: Callable[[dict[str, Any]], bool]
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if check(client.get(f"/v1/dubs/{dub_id}", headers=caller.headers).json()):
            return
        time.sleep(0.02)
    raise AssertionError("the change never showed")


def test_polls_are_cached_and_see_changes_made_by_other_processes(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    from app.core.db import new_session
    from app.models import Job

    dub_id = _create(client, caller, media_server)
    # Canceled first, so that a Celery worker running for other tests never writes to this row.
    client.post(f"/v1/dubs/{dub_id}/cancel", headers=caller.headers)
    _poll_until(client, caller, dub_id, lambda body: body["status"] == "canceled")
    _poll_until(client, caller, dub_id, lambda body: uuid.UUID(dub_id) in _cached_ids())
    with new_session() as session:  # what a worker does, from outside this process's view
        session.execute(
            update(Job)
            .where(Job.id == uuid.UUID(dub_id))
            .values(progress_stage="rendering", progress_percent=42.0)
        )
        session.commit()
    _poll_until(
        client,
        caller,
        dub_id,
        lambda body: body["progress"] == {"stage": "rendering", "percent": 42.0, "bytes_fetched": None},
    )


def test_a_cached_job_is_still_hidden_from_other_accounts(
    client: TestClient, caller: Caller, make_caller: Callable[..., Caller], media_server: MediaServer
) -> None:
    dub_id = _create(client, caller, media_server)
    _poll_until(client, caller, dub_id, lambda body: uuid.UUID(dub_id) in _cached_ids())
    stranger = make_caller(rate_limit_per_minute=0)
    response = client.get(f"/v1/dubs/{dub_id}", headers=stranger.headers)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_cancel_is_seen_by_the_very_next_poll(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    dub_id = _create(client, caller, media_server)
    _poll_until(client, caller, dub_id, lambda body: uuid.UUID(dub_id) in _cached_ids())
    assert client.post(f"/v1/dubs/{dub_id}/cancel", headers=caller.headers).json()["status"] == "canceled"
    assert client.get(f"/v1/dubs/{dub_id}", headers=caller.headers).json()["status"] == "canceled"
