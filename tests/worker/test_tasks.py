"""End to end through a real Celery worker: POST → fetch → engine → S3 → GET, webhooks, failures, cancel,
uploads, and a worker killed mid-job."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import av
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from tests.conftest import Caller, MediaServer, WebhookReceiver, WorkerProcess, wait_for_status


@pytest.fixture
def worker(celery_worker: WorkerProcess) -> WorkerProcess:
    celery_worker.start()
    return celery_worker


def _body(
    media_server: MediaServer, video: str = "video.mp4", audio: str = "audio.m4a", **extra: Any
) -> dict[str, Any]:
    return {"video_url": media_server.url(video), "audio_url": media_server.url(audio), **extra}


def _wait_for_webhooks(receiver: WebhookReceiver, path: str, count: int, timeout_s: float = 60) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        received = receiver.for_path(path)
        if len(received) >= count:
            return received
        time.sleep(0.1)
    raise AssertionError(f"{len(receiver.for_path(path))} webhooks at /{path}, wanted {count}")


def _verify(caller: Caller, received: Any) -> dict[str, Any]:
    """Check the signature with the Standard Webhooks reference library, as a customer would."""
    payload: dict[str, Any] = Webhook(caller.webhook_secret).verify(received.body, received.headers)
    return payload


def test_a_dub_goes_from_post_to_a_downloadable_output(
    client: TestClient,
    caller: Caller,
    media_server: MediaServer,
    webhook_receiver: WebhookReceiver,
    worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    hook = f"hooks/{uuid.uuid4().hex}"
    created = client.post(
        "/v1/dubs",
        json=_body(media_server, webhook_url=webhook_receiver.url(hook), metadata={"customer_ref": "42"}),
        headers=caller.headers,
    ).json()
    done = wait_for_status(client, caller, created["id"], {"succeeded", "failed", "canceled"})
    assert done["status"] == "succeeded", (done, worker.log())
    inputs = [media_server.directory / name for name in ("video.mp4", "audio.m4a")]
    fetched = sum(path.stat().st_size for path in inputs)
    assert done["progress"] == {"stage": "done", "percent": 100.0, "bytes_fetched": fetched}
    assert done["metadata"] == {"customer_ref": "42"}
    assert done["started_at"] and done["finished_at"]
    # The inputs' facts and the time each engine stage took.
    video_facts = done["media"]["video"]
    assert video_facts["frame_count"] == 25 and (video_facts["width"], video_facts["height"]) == (64, 64)
    assert video_facts["size_bytes"] == (media_server.directory / "video.mp4").stat().st_size
    assert done["media"]["audio"]["duration_s"] == pytest.approx(1.0, abs=0.1)
    assert "probe" in done["timing"]["stages_s"]
    output = done["output"]
    assert output["size_bytes"] > 0
    assert output["duration_s"] == pytest.approx(1.0, abs=0.1)

    downloaded = tmp_path / "out.mp4"
    downloaded.write_bytes(httpx.get(output["url"]).raise_for_status().content)
    assert downloaded.stat().st_size == output["size_bytes"]
    with av.open(str(downloaded)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (64, 64)
        assert video.codec_context.name == "h264"
        assert len(container.streams.audio) == 1
        frames = sum(1 for _ in container.decode(video=0))
    # 25 source frames; the AAC track runs to 1.024 s (whole 1024-sample frames), which `auto` may follow.
    assert frames in (25, 26)

    redirect = client.get(f"/v1/dubs/{created['id']}/output", headers=caller.headers, follow_redirects=False)
    assert redirect.status_code == 307
    assert httpx.get(redirect.headers["location"]).content == downloaded.read_bytes()

    received = _wait_for_webhooks(webhook_receiver, hook, 1)
    assert len(received) == 1
    payload = _verify(caller, received[0])
    assert payload["type"] == "dub.succeeded"
    assert payload["data"]["id"] == created["id"]
    assert payload["data"]["status"] == "succeeded"
    assert payload["data"]["metadata"] == {"customer_ref": "42"}
    assert received[0].headers["webhook-id"].startswith("msg_")

    # The receiver answers before the worker records the answer: read the delivery once it is recorded.
    deadline = time.monotonic() + 10
    while True:
        deliveries = client.get(
            f"/v1/dubs/{created['id']}/webhook_deliveries", headers=caller.headers
        ).json()["data"]
        if deliveries[0]["status"] != "pending" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(item["event_type"], item["status"]) for item in deliveries] == [("dub.succeeded", "delivered")]
    assert deliveries[0]["id"] == received[0].headers["webhook-id"]
    assert [attempt["status_code"] for attempt in deliveries[0]["attempts"]] == [204]


@pytest.mark.parametrize(
    ("video", "code", "retryable"),
    [
        ("broken.mp4", "invalid_media", False),
        ("html", "not_media", False),
        ("status/404", "fetch_failed", False),
        ("status/403", "fetch_failed", False),
        ("status/503", "fetch_failed", True),
        ("status/429", "fetch_failed", True),
        # Seven hops: more than the five a fetch follows.
        ("redirect?to=" + quote("/redirect?to=" * 6 + "/video.mp4", safe=""), "fetch_failed", False),
    ],
)
def test_bad_inputs_fail_the_job_with_a_stable_code(
    client: TestClient,
    caller: Caller,
    media_server: MediaServer,
    webhook_receiver: WebhookReceiver,
    worker: WorkerProcess,
    video: str,
    code: str,
    retryable: bool,
) -> None:
    hook = f"hooks/{uuid.uuid4().hex}"
    created = client.post(
        "/v1/dubs",
        json=_body(media_server, video=video, webhook_url=webhook_receiver.url(hook)),
        headers=caller.headers,
    ).json()
    done = wait_for_status(client, caller, created["id"], {"succeeded", "failed", "canceled"})
    assert done["status"] == "failed"
    assert done["error"]["code"] == code, done
    assert done["error"]["retryable"] is retryable
    # Both inputs may fail alike; the message says which one did.
    assert done["error"]["message"].startswith("video_url: ") or code == "invalid_media", done
    assert done["output"] is None
    payload = _verify(caller, _wait_for_webhooks(webhook_receiver, hook, 1)[0])
    assert payload["type"] == "dub.failed"
    assert payload["data"]["error"]["code"] == code


def test_a_text_file_as_audio_is_named_as_the_audio(
    client: TestClient, caller: Caller, media_server: MediaServer, worker: WorkerProcess
) -> None:
    (media_server.directory / "notes.txt").write_text("Not audio at all. " * 100)
    created = client.post(
        "/v1/dubs", json=_body(media_server, audio="notes.txt"), headers=caller.headers
    ).json()
    done = wait_for_status(client, caller, created["id"], {"succeeded", "failed", "canceled"})
    assert done["error"]["code"] == "not_media" and done["error"]["retryable"] is False
    assert done["error"]["message"].startswith("audio_url: "), done


def test_media_longer_than_the_key_allows_fails(
    client: TestClient, make_caller: Callable[..., Caller], media_server: MediaServer, worker: WorkerProcess
) -> None:
    short = make_caller(rate_limit_per_minute=0, max_duration_s=0.5)
    created = client.post("/v1/dubs", json=_body(media_server), headers=short.headers).json()
    done = wait_for_status(client, short, created["id"], {"succeeded", "failed"})
    assert done["error"]["code"] == "media_too_long"


def test_a_dub_that_fails_after_probing_still_tells_its_media_facts(
    client: TestClient, caller: Caller, media_server: MediaServer, worker: WorkerProcess
) -> None:
    """The facts are stored once probed, not only on success: this dub fails later, in face analysis."""
    created = client.post(
        "/v1/dubs", json=_body(media_server, on_no_face="fail"), headers=caller.headers
    ).json()
    assert created["media"] is None
    done = wait_for_status(client, caller, created["id"], {"succeeded", "failed", "canceled"})
    assert done["error"]["code"] == "no_face", done
    video, audio = done["media"]["video"], done["media"]["audio"]
    assert video["size_bytes"] == (media_server.directory / "video.mp4").stat().st_size
    assert (video["frame_count"], video["frame_rate"], video["width"], video["height"]) == (25, 25.0, 64, 64)
    assert video["duration_s"] == pytest.approx(1.0)
    assert audio["duration_s"] == pytest.approx(1.0, abs=0.1) and audio["codec"] == "aac"


def test_cancel_stops_a_running_job(
    client: TestClient,
    caller: Caller,
    media_server: MediaServer,
    webhook_receiver: WebhookReceiver,
    worker: WorkerProcess,
) -> None:
    hook = f"hooks/{uuid.uuid4().hex}"
    created = client.post(
        "/v1/dubs",
        json=_body(media_server, video="slow/video.mp4", webhook_url=webhook_receiver.url(hook)),
        headers=caller.headers,
    ).json()
    wait_for_status(client, caller, created["id"], {"processing"})
    requested = client.post(f"/v1/dubs/{created['id']}/cancel", headers=caller.headers).json()
    assert requested["status"] == "processing" and requested["cancel_requested"] is True
    done = wait_for_status(client, caller, created["id"], {"succeeded", "failed", "canceled"})
    assert done["status"] == "canceled"
    assert _verify(caller, _wait_for_webhooks(webhook_receiver, hook, 1)[0])["type"] == "dub.canceled"


def test_cancel_stops_a_download_and_the_download_reports_its_bytes(
    client: TestClient, caller: Caller, media_server: MediaServer, worker: WorkerProcess
) -> None:
    # A download that would take 120 s; the cancel must not wait for it.
    created = client.post(
        "/v1/dubs", json=_body(media_server, video="slow/video.mp4?seconds=120"), headers=caller.headers
    ).json()
    deadline = time.monotonic() + 60
    job = created
    while time.monotonic() < deadline:
        job = client.get(f"/v1/dubs/{created['id']}", headers=caller.headers).json()
        if job["progress"]["stage"] == "downloading" and job["progress"]["percent"] > 0:
            break
        time.sleep(0.2)
    assert job["progress"]["stage"] == "downloading" and 0 < job["progress"]["percent"] < 100, job
    assert 0 < job["progress"]["bytes_fetched"] < (media_server.directory / "video.mp4").stat().st_size
    client.post(f"/v1/dubs/{created['id']}/cancel", headers=caller.headers)
    done = wait_for_status(client, caller, created["id"], {"succeeded", "failed", "canceled"}, timeout_s=40)
    assert done["status"] == "canceled", done["error"]


def test_a_download_of_undeclared_length_reports_the_bytes_fetched(
    client: TestClient, caller: Caller, media_server: MediaServer, worker: WorkerProcess
) -> None:
    """No Content-Length: the percent cannot move, the bytes fetched do."""
    slow = _body(media_server, video="slow/video.mp4?seconds=20&length=no")
    created = client.post("/v1/dubs", json=slow, headers=caller.headers).json()
    assert created["progress"]["bytes_fetched"] is None
    deadline = time.monotonic() + 60
    seen: list[int] = []
    while time.monotonic() < deadline and len(set(seen)) < 2:
        job = client.get(f"/v1/dubs/{created['id']}", headers=caller.headers).json()
        if job["progress"]["stage"] == "downloading" and job["progress"]["bytes_fetched"]:
            assert job["progress"]["percent"] == 0
            seen.append(job["progress"]["bytes_fetched"])
        time.sleep(0.2)
    assert len(set(seen)) >= 2 and seen == sorted(seen), seen  # it grows as the bytes arrive
    client.post(f"/v1/dubs/{created['id']}/cancel", headers=caller.headers)
    done = wait_for_status(client, caller, created["id"], {"succeeded", "failed", "canceled"}, timeout_s=40)
    assert done["status"] == "canceled", done["error"]


def test_prefer_wait_answers_with_the_finished_dub(
    client: TestClient, caller: Caller, media_server: MediaServer, worker: WorkerProcess
) -> None:
    answer = client.post(
        "/v1/dubs", json=_body(media_server), headers={**caller.headers, "Prefer": "wait=60"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "succeeded" and answer.json()["output"]["url"]
    assert answer.headers["preference-applied"] == "wait=60"
    # Still running when the wait is over: 202 with the job as it stands.
    slow = _body(media_server, video="slow/video.mp4?seconds=30")
    pending = client.post("/v1/dubs", json=slow, headers={**caller.headers, "Prefer": "wait=1"})
    assert pending.status_code == 202 and pending.json()["status"] in ("queued", "processing")
    client.post(f"/v1/dubs/{pending.json()['id']}/cancel", headers=caller.headers)


def test_uploaded_files_can_be_dubbed(
    client: TestClient, caller: Caller, media_server: MediaServer, worker: WorkerProcess
) -> None:
    ids = {}
    for name, content_type in [("video.mp4", "video/mp4"), ("audio.m4a", "audio/mp4")]:
        data = (media_server.directory / name).read_bytes()
        response = client.post(
            "/v1/files", files={"file": (name, data, content_type)}, headers=caller.headers
        )
        assert response.status_code == 201, response.text
        assert response.json()["size_bytes"] == len(data)
        ids[name] = response.json()["id"]
    created = client.post(
        "/v1/dubs",
        json={"video_file_id": ids["video.mp4"], "audio_file_id": ids["audio.m4a"]},
        headers=caller.headers,
    ).json()
    done = wait_for_status(client, caller, created["id"], {"succeeded", "failed", "canceled"})
    assert done["status"] == "succeeded", done


def test_progress_events_when_asked_for(
    client: TestClient,
    caller: Caller,
    media_server: MediaServer,
    webhook_receiver: WebhookReceiver,
    worker: WorkerProcess,
) -> None:
    hook = f"hooks/{uuid.uuid4().hex}"
    created = client.post(
        "/v1/dubs",
        json=_body(
            media_server,
            webhook_url=webhook_receiver.url(hook),
            webhook_events=["dub.started", "dub.progress", "dub.succeeded"],
        ),
        headers=caller.headers,
    ).json()
    wait_for_status(client, caller, created["id"], {"succeeded"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        types = [_verify(caller, item)["type"] for item in webhook_receiver.for_path(hook)]
        if "dub.succeeded" in types:
            break
        time.sleep(0.1)
    assert "dub.progress" in types and "dub.succeeded" in types
    # In order: started first, succeeded last, and no progress event repeating the end ("done", 100 %).
    payloads = sorted(
        (_verify(caller, item) for item in webhook_receiver.for_path(hook)),
        key=lambda item: item["timestamp"],
    )
    assert payloads[0]["type"] == "dub.started" and payloads[0]["data"]["status"] == "processing"
    assert payloads[-1]["type"] == "dub.succeeded"
    progress = [item["data"]["progress"] for item in payloads if item["type"] == "dub.progress"]
    assert progress and all(item["percent"] < 100 and item["stage"] != "done" for item in progress), progress


def test_a_worker_killed_mid_job_leaves_a_job_that_still_finishes_once(
    client: TestClient,
    caller: Caller,
    media_server: MediaServer,
    webhook_receiver: WebhookReceiver,
    worker: WorkerProcess,
) -> None:
    from app.core.db import new_session
    from app.models import Job, JobEvent, WebhookDelivery

    hook = f"hooks/{uuid.uuid4().hex}"
    created = client.post(
        "/v1/dubs",
        json=_body(media_server, video="slow/video.mp4", webhook_url=webhook_receiver.url(hook)),
        headers=caller.headers,
    ).json()
    wait_for_status(client, caller, created["id"], {"processing"})
    worker.kill()
    worker.start()  # its beat runs the reaper, which hands the stale job back to the queue
    done = wait_for_status(client, caller, created["id"], {"succeeded", "failed", "canceled"}, timeout_s=120)
    assert done["status"] == "succeeded", (done, worker.log())
    job_id = uuid.UUID(created["id"])
    with new_session() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.attempts == 2
        events = list(session.scalars(select(JobEvent.type).where(JobEvent.job_id == job_id)))
        deliveries = list(
            session.scalars(select(WebhookDelivery.event_type).where(WebhookDelivery.job_id == job_id))
        )
    assert events.count("succeeded") == 1
    assert events.count("requeued") == 1
    assert deliveries == ["dub.succeeded"]
