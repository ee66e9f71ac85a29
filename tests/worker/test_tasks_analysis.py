"""Through a real Celery worker: speakers, the no-face policy and the analysis summary on jobs and webhooks,
and preflights (fetch → probe → analyse → plan, no render). The worker runs the passthrough renderer, so
these also prove that a request naming speakers or `on_no_face: fail` is honoured without a pixel-changing
renderer."""

from __future__ import annotations

import io
import shutil
import time
import uuid
from collections.abc import Callable
from typing import Any

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from standardwebhooks.webhooks import Webhook

from tests.conftest import ROOT, Caller, MediaServer, WebhookReceiver, WorkerProcess, wait_for_status

TERMINAL = {"succeeded", "failed", "canceled"}


@pytest.fixture
def worker(celery_worker: WorkerProcess) -> WorkerProcess:
    celery_worker.start()
    return celery_worker


@pytest.fixture(scope="module")
def speaker_clip(media_server: MediaServer) -> tuple[str, str]:
    """The repository's sample of one person talking, and a dub track, served over HTTP."""
    for name in ("speaker.mp4", "dub_speech.m4a"):
        shutil.copy(ROOT / "samples" / name, media_server.directory / name)
    return media_server.url("speaker.mp4"), media_server.url("dub_speech.m4a")


def _body(media_server: MediaServer, video: str = "video.mp4", **extra: Any) -> dict[str, Any]:
    return {"video_url": media_server.url(video), "audio_url": media_server.url("audio.m4a"), **extra}


def _wait_for_preflight(client: TestClient, caller: Caller, preflight_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/v1/dubs/preflight/{preflight_id}", headers=caller.headers).json()
        if body.get("status") in TERMINAL:
            return body
        time.sleep(0.2)
    raise AssertionError(f"preflight {preflight_id} stayed {body.get('status')}: {body}")


def test_on_no_face_fail_fails_a_dub_of_a_clip_without_a_face(
    client: TestClient,
    caller: Caller,
    media_server: MediaServer,
    webhook_receiver: WebhookReceiver,
    worker: WorkerProcess,
) -> None:
    hook = f"hooks/{uuid.uuid4().hex}"
    created = client.post(
        "/v1/dubs",
        json=_body(media_server, on_no_face="fail", webhook_url=webhook_receiver.url(hook)),
        headers=caller.headers,
    ).json()
    done = wait_for_status(client, caller, created["id"], TERMINAL)
    assert done["status"] == "failed", (done, worker.log())
    assert done["error"]["code"] == "no_face" and done["error"]["retryable"] is False
    assert "25 of 25 frames" in done["error"]["message"]
    assert done["output"] is None


def test_a_default_dub_of_the_same_clip_passes_the_faceless_frames_through(
    client: TestClient, caller: Caller, media_server: MediaServer, worker: WorkerProcess
) -> None:
    created = client.post("/v1/dubs", json=_body(media_server), headers=caller.headers).json()
    done = wait_for_status(client, caller, created["id"], TERMINAL)
    assert done["status"] == "succeeded", (done, worker.log())
    # The passthrough renderer changes no pixel and nothing asked for analysis: none ran.
    assert done["analysis"] is None and done["frames_rendered"] == 0


def test_a_pinned_speaker_is_dubbed_and_reported_in_the_job_and_its_webhook(
    client: TestClient,
    caller: Caller,
    media_server: MediaServer,
    speaker_clip: tuple[str, str],
    webhook_receiver: WebhookReceiver,
    worker: WorkerProcess,
) -> None:
    video_url, audio_url = speaker_clip
    hook = f"hooks/{uuid.uuid4().hex}"
    created = client.post(
        "/v1/dubs",
        json={
            "video_url": video_url,
            "audio_url": audio_url,
            # A point on the face (its box in frame 10 is about x 137-207, y 53-136).
            "speakers": [{"point": {"frame": 10, "x": 172, "y": 95}}],
            "webhook_url": webhook_receiver.url(hook),
        },
        headers=caller.headers,
    ).json()
    done = wait_for_status(client, caller, created["id"], TERMINAL, timeout_s=180)
    assert done["status"] == "succeeded", (done["error"], worker.log())
    analysis = done["analysis"]
    assert analysis["speakers_dubbed"] == 1 and analysis["speaker_track_ids"] == [0]
    assert analysis["speaker_selection"] == "pinned"
    assert analysis["face_tracks"] == 1 and analysis["frames_without_face"] == 0
    assert done["frames_rendered"] == 0  # passthrough renders nothing
    deadline = time.monotonic() + 60
    while not webhook_receiver.for_path(hook) and time.monotonic() < deadline:
        time.sleep(0.1)
    received = webhook_receiver.for_path(hook)[0]
    payload = Webhook(caller.webhook_secret).verify(received.body, received.headers)
    assert payload["type"] == "dub.succeeded" and payload["data"]["analysis"] == analysis


def test_a_pin_that_matches_no_face_fails_with_speaker_not_found(
    client: TestClient,
    caller: Caller,
    speaker_clip: tuple[str, str],
    worker: WorkerProcess,
) -> None:
    video_url, audio_url = speaker_clip
    created = client.post(
        "/v1/dubs",
        json={"video_url": video_url, "audio_url": audio_url, "speakers": [{"track_id": 7}]},
        headers=caller.headers,
    ).json()
    done = wait_for_status(client, caller, created["id"], TERMINAL, timeout_s=180)
    assert done["status"] == "failed", (done, worker.log())
    assert done["error"]["code"] == "speaker_not_found" and done["error"]["retryable"] is False


def test_a_preflight_of_a_talking_face_reports_tracks_speaker_plan_and_estimate(
    client: TestClient, caller: Caller, speaker_clip: tuple[str, str], worker: WorkerProcess
) -> None:
    video_url, audio_url = speaker_clip
    created = client.post(
        "/v1/dubs/preflight", json={"video_url": video_url, "audio_url": audio_url}, headers=caller.headers
    ).json()
    done = _wait_for_preflight(client, caller, created["id"])
    assert done["status"] == "succeeded", (done, worker.log())
    report = done["report"]
    assert report["input"]["video"]["frame_count"] == 126 and report["input"]["audio"]["codec"] == "aac"
    analysis = report["analysis"]
    assert analysis["frame_count"] == 126 and analysis["shots"] == [[0, 125]]
    [track] = analysis["tracks"]
    assert track["id"] == 0 and (track["first_frame"], track["last_frame"]) == (0, 125)
    assert analysis["speakers"] == [0] and analysis["frames_without_face"] == 0
    # The dub track (5.5 s) outlasts the video (5.04 s): `auto` extends the video by bouncing it.
    plan = report["plan"]
    assert plan["requested"] == "auto" and plan["mode"] == "bounce"
    assert plan["output_frames"] == 138 and plan["output_seconds"] == pytest.approx(5.52)
    assert report["segment_count"] >= 2
    estimate = report["estimate"]
    assert estimate["is_estimate"] is True and estimate["frames_to_render"] >= plan["output_frames"]
    assert estimate["render_seconds"] == pytest.approx(
        estimate["frames_to_render"] * estimate["seconds_per_frame"], abs=0.1
    )
    # The test workers run the passthrough renderer: it renders nothing, so no render time is promised.
    assert estimate["renderer"] == "passthrough" and estimate["render_seconds"] == 0
    assert "passthrough" in estimate["note"]


def test_a_preflight_estimates_the_processing_time_this_deployment_measured(
    client: TestClient,
    caller: Caller,
    media_server: MediaServer,
    worker: WorkerProcess,
    dub_history: Callable[..., list[uuid.UUID]],
) -> None:
    """The last succeeded dubs took 4 s per second of video: so will this one."""
    dub_history(20, processing_s=40, video_s=10)
    created = client.post("/v1/dubs/preflight", json=_body(media_server), headers=caller.headers).json()
    done = _wait_for_preflight(client, caller, created["id"])
    assert done["status"] == "succeeded", (done, worker.log())
    report = done["report"]
    estimate = report["estimate"]
    assert estimate["processing_seconds"] == pytest.approx(
        4 * report["input"]["video"]["duration_s"], abs=0.1
    )
    assert "last 20 succeeded dubs" in estimate["note"]
    # Passthrough re-renders nothing: its zero render time is known, not assumed.
    assert estimate["render_seconds"] == 0 and estimate["seconds_per_frame_measured"] is True


def test_a_preflight_shows_its_representative_frame_with_each_face_boxed(
    client: TestClient,
    caller: Caller,
    make_caller: Callable[..., Caller],
    speaker_clip: tuple[str, str],
    worker: WorkerProcess,
) -> None:
    video_url, audio_url = speaker_clip
    created = client.post(
        "/v1/dubs/preflight", json={"video_url": video_url, "audio_url": audio_url}, headers=caller.headers
    ).json()
    early = client.get(f"/v1/dubs/preflight/{created['id']}/frame", headers=caller.headers)
    if early.status_code != 200:  # the worker may already have finished on a fast machine
        assert early.status_code == 409, early.text
        assert early.json()["code"] == "preflight_not_ready" and early.json()["retryable"] is True
    done = _wait_for_preflight(client, caller, created["id"])
    assert done["status"] == "succeeded", (done, worker.log())
    frame = done["report"]["frame"]
    assert (frame["width"], frame["height"]) == (384, 384) and 0 <= frame["index"] < 126
    [face] = frame["faces"]
    assert face["track_id"] == 0 and face["dubbed"] is True
    x0, y0, x1, y1 = face["box"]
    assert 100 < x0 < x1 < 240 and 20 < y0 < y1 < 170  # the astronaut's face (about x 137-207, y 53-136)

    response = client.get(f"/v1/dubs/preflight/{created['id']}/frame", headers=caller.headers)
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    shown = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.float32)
    with av.open(str(ROOT / "samples" / "speaker.mp4")) as container:
        errors = [
            float(np.abs(shown - decoded.to_ndarray(format="rgb24")).mean())
            for decoded in container.decode(video=0)
        ]
    # The frame the report names, upright and whole (JPEG loses a little): no other frame is closer.
    assert errors[frame["index"]] < 4 and errors[frame["index"]] <= min(errors) + 0.01

    stranger = make_caller(rate_limit_per_minute=0)
    for path, who in [
        (f"/v1/dubs/preflight/{created['id']}/frame", stranger),
        (f"/v1/dubs/preflight/{uuid.uuid4()}/frame", caller),
    ]:
        missing = client.get(path, headers=who.headers)
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert client.get(f"/v1/dubs/preflight/{created['id']}/frame").status_code == 401


@pytest.mark.parametrize(
    ("video", "extra", "code"),
    [
        ("broken.mp4", {}, "invalid_media"),
        ("video.mp4", {"on_no_face": "fail"}, "no_face"),
        ("status/404", {}, "fetch_failed"),
    ],
)
def test_a_preflight_that_cannot_succeed_fails_with_the_code_the_dub_would_get(
    client: TestClient,
    caller: Caller,
    media_server: MediaServer,
    worker: WorkerProcess,
    video: str,
    extra: dict[str, Any],
    code: str,
) -> None:
    created = client.post(
        "/v1/dubs/preflight", json=_body(media_server, video=video, **extra), headers=caller.headers
    ).json()
    done = _wait_for_preflight(client, caller, created["id"])
    assert done["status"] == "failed", (done, worker.log())
    assert done["error"]["code"] == code and done["report"] is None


def test_a_preflight_echoes_metadata_and_announces_its_end_at_its_webhook_url(
    client: TestClient,
    caller: Caller,
    media_server: MediaServer,
    webhook_receiver: WebhookReceiver,
    worker: WorkerProcess,
) -> None:

    for video, outcome in (("video.mp4", "succeeded"), ("broken.mp4", "failed")):
        hook = f"hooks/preflight-{uuid.uuid4().hex}"
        body = _body(
            media_server, video=video, webhook_url=webhook_receiver.url(hook), metadata={"ref": "p-1"}
        )
        created = client.post("/v1/dubs/preflight", json=body, headers=caller.headers).json()
        assert created["metadata"] == {"ref": "p-1"} and created["webhook_url"] == webhook_receiver.url(hook)
        done = _wait_for_preflight(client, caller, created["id"])
        assert done["status"] == outcome, done
        deadline = time.monotonic() + 30
        while not webhook_receiver.for_path(hook) and time.monotonic() < deadline:
            time.sleep(0.1)
        received = webhook_receiver.for_path(hook)
        assert len(received) == 1
        payload = Webhook(caller.webhook_secret).verify(received[0].body, received[0].headers)
        assert payload["type"] == f"preflight.{outcome}"
        assert payload["data"]["id"] == created["id"] and payload["data"]["metadata"] == {"ref": "p-1"}
