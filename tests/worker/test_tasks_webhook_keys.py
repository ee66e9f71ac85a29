"""Webhooks are signed with the secret of the key that made the job, and never with a revoked key's."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import (
    Caller,
    MediaServer,
    ReceivedWebhook,
    WebhookReceiver,
    WorkerProcess,
    wait_for_status,
)


@pytest.fixture
def worker(celery_worker: WorkerProcess) -> WorkerProcess:
    celery_worker.start()
    return celery_worker


def _dub(client: TestClient, caller: Caller, media_server: MediaServer, webhook_url: str) -> str:
    body = {
        "video_url": media_server.url("video.mp4"),
        "audio_url": media_server.url("audio.m4a"),
        "webhook_url": webhook_url,
    }
    response = client.post("/v1/dubs", json=body, headers=caller.headers)
    assert response.status_code == 202, response.text
    dub_id: str = response.json()["id"]
    wait_for_status(client, caller, dub_id, {"succeeded"})
    return dub_id


def _received_for(receiver: WebhookReceiver, path: str, dub_id: str, count: int = 1) -> list[ReceivedWebhook]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [item for item in receiver.for_path(path) if item.json()["data"]["id"] == dub_id]
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no webhook for {dub_id}")


def _delivery(client: TestClient, caller: Caller, dub_id: str, done: Callable[[Any], bool]) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        data = client.get(f"/v1/dubs/{dub_id}/webhook_deliveries", headers=caller.headers).json()["data"]
        if data and done(data[0]):
            return data[0]
        time.sleep(0.2)
    raise AssertionError(f"delivery of {dub_id} never done")


def test_each_key_of_an_account_verifies_its_own_events(
    client: TestClient,
    make_caller: Callable[..., Caller],
    media_server: MediaServer,
    webhook_receiver: WebhookReceiver,
    worker: WorkerProcess,
) -> None:
    first = make_caller(rate_limit_per_minute=0, max_concurrent_jobs=0)
    second = make_caller(account_id=first.account_id, rate_limit_per_minute=0, max_concurrent_jobs=0)
    path = f"/hooks/{uuid.uuid4().hex}"
    url = webhook_receiver.url(path)
    _dub(client, first, media_server, url)  # the first key registers the URL
    dub_id = _dub(client, second, media_server, url)
    received = _received_for(webhook_receiver, path, dub_id)[0]
    assert Webhook(second.webhook_secret).verify(received.body, received.headers)["data"]["id"] == dub_id
    with pytest.raises(WebhookVerificationError):
        Webhook(first.webhook_secret).verify(received.body, received.headers)


def test_a_revoked_keys_secret_never_signs_again(
    client: TestClient,
    make_caller: Callable[..., Caller],
    media_server: MediaServer,
    webhook_receiver: WebhookReceiver,
    worker: WorkerProcess,
) -> None:
    from app.core.db import new_session
    from app.keys.service import authenticate_in_new_session, revoke_key
    from app.models import Job
    from app.webhooks.service import redeliver

    caller = make_caller(rate_limit_per_minute=0, max_concurrent_jobs=0)
    path = f"/hooks/{uuid.uuid4().hex}"
    dub_id = _dub(client, caller, media_server, webhook_receiver.url(path))
    delivery = _delivery(client, caller, dub_id, lambda item: item["status"] == "delivered")
    assert len(_received_for(webhook_receiver, path, dub_id)) == 1

    authenticated = authenticate_in_new_session(caller.key)
    assert authenticated is not None
    with new_session() as session:
        assert revoke_key(session, caller.prefix)
        job = session.get(Job, uuid.UUID(dub_id.removeprefix("dub_")))
        assert job is not None
        redeliver(session, authenticated, job, delivery["id"])
        session.commit()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with new_session() as session:
            from app.models import WebhookDelivery

            record = session.get(WebhookDelivery, uuid.UUID(delivery["id"].removeprefix("msg_")))
            assert record is not None
            if record.status == "failed":
                break
        time.sleep(0.2)
    assert record.status == "failed" and record.last_error == "api key revoked"
    assert len(webhook_receiver.for_path(path)) == 1  # nothing sent after the revocation


def test_an_expired_previous_secret_stops_signing(service_env: dict[str, str]) -> None:
    from app.keys.service import new_webhook_secret
    from app.models import ApiKey
    from app.webhooks.service import _secrets

    now = datetime.now(UTC)
    current, previous = new_webhook_secret(), new_webhook_secret()
    key = ApiKey(
        webhook_secret=current,
        previous_webhook_secret=previous,
        previous_webhook_secret_expires_at=now + timedelta(hours=1),
    )
    assert _secrets(key, now) == [current, previous]
    key.previous_webhook_secret_expires_at = now - timedelta(seconds=1)
    assert _secrets(key, now) == [current]
    key.previous_webhook_secret_expires_at = now
    assert _secrets(key, now) == [current]
