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


def test_a_redelivery_while_a_retry_is_scheduled_does_not_spend_that_retry(
    client: TestClient, caller: Caller, media_server: MediaServer, webhook_receiver: WebhookReceiver
) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from app.core.db import new_session
    from app.keys.schemas import AuthenticatedKey
    from app.models import WebhookAttempt, WebhookDelivery
    from app.models.base import utcnow
    from app.webhooks import service

    path = f"/hooks/{uuid.uuid4().hex}"
    webhook_receiver.answers[path] = [500]
    body = {"video_url": media_server.url("video.mp4"), "audio_url": media_server.url("audio.m4a")}
    dub_id = client.post("/v1/dubs", json=body, headers=caller.headers).json()["id"]
    retry_at = utcnow() + timedelta(hours=1)
    with new_session() as session:
        key = client.get("/v1/keys/current", headers=caller.headers).json()
        endpoint = service.ensure_endpoint(
            session,
            AuthenticatedKey(uuid.UUID(key["id"]), caller.account_id, "t", caller.prefix, 0, 0, 0.0, None),
            webhook_receiver.url(path),
        )
        # A delivery that failed once and waits for its retry in an hour.
        delivery = WebhookDelivery(
            endpoint_id=endpoint.id,
            job_id=uuid.UUID(dub_id),
            event_type="dub.succeeded",
            payload="{}",
            attempt_count=1,
            next_attempt_at=retry_at,
        )
        session.add(delivery)
        session.commit()
        delivery_id = delivery.id
    with new_session() as session:
        assert service.deliver(session, delivery_id, manual=True) == "pending"
    with new_session() as session:
        stored = session.get(WebhookDelivery, delivery_id)
        assert stored is not None
        assert stored.attempt_count == 1 and stored.next_attempt_at == retry_at
        numbers = session.scalars(
            select(WebhookAttempt.number).where(WebhookAttempt.delivery_id == delivery_id)
        )
        assert list(numbers) == [1]
    assert len(webhook_receiver.for_path(path)) == 1
    # Asked through the API, the schedule stays as it was too.
    answer = client.post(
        f"/v1/dubs/{dub_id}/webhook_deliveries/msg_{delivery_id.hex}/redeliver", headers=caller.headers
    )
    assert answer.status_code == 202 and answer.json()["next_attempt_at"] is not None
    with new_session() as session:
        stored = session.get(WebhookDelivery, delivery_id)
        assert stored is not None and stored.status == "pending"
        assert stored.next_attempt_at is not None and stored.next_attempt_at > utcnow()
