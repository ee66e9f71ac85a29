"""Webhook delivery through the real worker: retries on failure, 410 disables, redelivery."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Caller, MediaServer, WebhookReceiver, WorkerProcess, wait_for_status


@pytest.fixture
def worker(celery_worker: WorkerProcess) -> WorkerProcess:
    celery_worker.start()
    return celery_worker


def _deliveries_when(
    client: TestClient, caller: Caller, dub_id: str, done: Any, timeout_s: float = 60
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    data: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        data = client.get(f"/v1/dubs/{dub_id}/webhook_deliveries", headers=caller.headers).json()["data"]
        if data and done(data[0]):
            return data
        time.sleep(0.2)
    raise AssertionError(f"deliveries stayed {data}")


def _start(client: TestClient, caller: Caller, media_server: MediaServer, url: str) -> str:
    body = {
        "video_url": media_server.url("video.mp4"),
        "audio_url": media_server.url("audio.m4a"),
        "webhook_url": url,
    }
    dub_id: str = client.post("/v1/dubs", json=body, headers=caller.headers).json()["id"]
    wait_for_status(client, caller, dub_id, {"succeeded"})
    return dub_id


def test_failed_attempts_are_retried_and_recorded(
    client: TestClient,
    caller: Caller,
    media_server: MediaServer,
    webhook_receiver: WebhookReceiver,
    worker: WorkerProcess,
) -> None:
    path = f"/hooks/{uuid.uuid4().hex}"
    webhook_receiver.answers[path] = [500, 503, 200]
    dub_id = _start(client, caller, media_server, webhook_receiver.url(path))
    deliveries = _deliveries_when(client, caller, dub_id, lambda item: item["status"] != "pending")
    assert deliveries[0]["status"] == "delivered"
    assert [attempt["status_code"] for attempt in deliveries[0]["attempts"]] == [500, 503, 200]
    # Every attempt carried the same message id, so the receiver can deduplicate.
    assert len({item.headers["webhook-id"] for item in webhook_receiver.for_path(path)}) == 1


def test_410_disables_the_endpoint_and_redeliver_sends_again(
    client: TestClient,
    caller: Caller,
    media_server: MediaServer,
    webhook_receiver: WebhookReceiver,
    worker: WorkerProcess,
) -> None:
    path = f"/hooks/{uuid.uuid4().hex}"
    webhook_receiver.answers[path] = [410, 204]
    dub_id = _start(client, caller, media_server, webhook_receiver.url(path))
    deliveries = _deliveries_when(client, caller, dub_id, lambda item: item["status"] != "pending")
    assert deliveries[0]["status"] == "failed"
    assert [attempt["status_code"] for attempt in deliveries[0]["attempts"]] == [410]

    response = client.post(
        f"/v1/dubs/{dub_id}/webhook_deliveries/{deliveries[0]['id']}/redeliver", headers=caller.headers
    )
    assert response.status_code == 202, response.text
    deliveries = _deliveries_when(client, caller, dub_id, lambda item: item["status"] == "delivered")
    assert [attempt["status_code"] for attempt in deliveries[0]["attempts"]] == [410, 204]
    assert len(webhook_receiver.for_path(path)) == 2


def test_redeliver_to_a_new_url(
    client: TestClient,
    caller: Caller,
    media_server: MediaServer,
    webhook_receiver: WebhookReceiver,
    worker: WorkerProcess,
) -> None:
    old, new = f"/hooks/{uuid.uuid4().hex}", f"/hooks/{uuid.uuid4().hex}"
    webhook_receiver.answers[old] = [410]
    dub_id = _start(client, caller, media_server, webhook_receiver.url(old))
    deliveries = _deliveries_when(client, caller, dub_id, lambda item: item["status"] != "pending")
    response = client.post(
        f"/v1/dubs/{dub_id}/webhook_deliveries/{deliveries[0]['id']}/redeliver",
        json={"url": webhook_receiver.url(new)},
        headers=caller.headers,
    )
    assert response.status_code == 202, response.text
    assert response.json()["url"] == webhook_receiver.url(new)
    deliveries = _deliveries_when(client, caller, dub_id, lambda item: item["status"] == "delivered")
    assert [attempt["status_code"] for attempt in deliveries[0]["attempts"]] == [410, 204]
    received = webhook_receiver.for_path(new)
    assert len(received) == 1 and received[0].headers["webhook-id"] == deliveries[0]["id"]
