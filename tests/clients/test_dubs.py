"""The client against the real API server and worker: dubs from URLs and from uploads, waiting,
downloading, listing, canceling, idempotent retries."""

from __future__ import annotations

import uuid
from pathlib import Path

import av
import httpx
import pytest
import redub_client

from tests.conftest import Caller, MediaServer

WAIT_S = 180


def decoded(path: Path) -> tuple[int, bool]:
    """Frames decoded from the file's video stream, and whether it has an audio stream."""
    with av.open(str(path)) as container:
        has_audio = bool(container.streams.audio)
        frames = sum(1 for _ in container.decode(video=0))
    return frames, has_audio


def test_a_dub_from_urls_waits_and_downloads_a_decodable_mp4(
    redub: redub_client.Redub, media_server: MediaServer, tmp_path: Path
) -> None:
    dub = redub.dubs.create(
        video=media_server.url("video.mp4"),
        audio=media_server.url("audio.m4a"),
        sync_mode="auto",
        metadata={"order": 7},
    )
    assert isinstance(dub, redub_client.Dub)
    assert dub.status in ("queued", "processing")
    assert dub.input.video_url == media_server.url("video.mp4")

    assert dub.wait(timeout=WAIT_S, poll_interval=0.2) is dub
    assert dub.status == "succeeded", dub.error
    assert dub.model == "passthrough"  # the test environment's default model
    assert dub.metadata == {"order": 7}
    assert dub.output is not None and dub.output.size_bytes

    written = dub.download(tmp_path / "out" / "dubbed.mp4")
    assert written == tmp_path / "out" / "dubbed.mp4"
    assert written.stat().st_size == dub.output.size_bytes
    frames, has_audio = decoded(written)
    assert frames >= 25 and has_audio
    assert not list(tmp_path.rglob("*.part"))

    # A folder gets dub-<id>.mp4; get() by id gives the same job.
    again = redub.dubs.get(str(dub.id))
    assert again.id == dub.id and again.status == "succeeded"
    assert again.download(tmp_path) == tmp_path / f"dub-{dub.id}.mp4"


def test_local_files_are_uploaded_with_progress(
    redub: redub_client.Redub, media_server: MediaServer, tmp_path: Path
) -> None:
    video_path = media_server.directory / "video.mp4"
    audio_path = media_server.directory / "audio.m4a"
    progress: list[tuple[int, int | None]] = []
    with audio_path.open("rb") as audio_file:
        dub = redub.dubs.create(
            video=video_path,  # a path
            audio=audio_file,  # an open binary file
            progress=lambda sent, total: progress.append((sent, total)),
        )
    assert dub.input.video_url is None and dub.input.audio_url is None
    assert dub.input.video_file_id is not None and dub.input.audio_file_id is not None
    uploaded = redub.files.get(dub.input.video_file_id)
    assert uploaded.size_bytes == video_path.stat().st_size
    assert uploaded.filename == "video.mp4"
    # Each upload reports from 0 to its full size.
    sizes = [video_path.stat().st_size, audio_path.stat().st_size]
    assert [item for item in progress if item[0] == item[1]] == [(size, size) for size in sizes]
    assert progress[0] == (0, sizes[0])

    dub.wait(timeout=WAIT_S, poll_interval=0.2)
    assert dub.status == "succeeded", dub.error
    frames, _ = decoded(dub.download(tmp_path / "from-upload.mp4"))
    assert frames >= 25


def test_a_missing_local_file_is_a_clear_error_before_any_request(redub: redub_client.Redub) -> None:
    with pytest.raises(redub_client.InvalidRequestError) as caught:
        redub.dubs.create(video="no/such/video.mp4", audio="no/such/audio.m4a")
    assert caught.value.code == "input_not_found" and caught.value.param == "video"
    assert caught.value.status is None


def test_list_follows_every_page(api_url: str, account: Caller, media_server: MediaServer) -> None:
    pages: list[httpx.URL] = []

    def record(request: httpx.Request) -> None:
        if request.method == "GET" and request.url.path == "/v1/dubs":
            pages.append(request.url)

    http = httpx.Client(event_hooks={"request": [record]})
    with redub_client.Redub(api_key=account.key, base_url=api_url, http_client=http) as client:
        created = [
            client.dubs.create(video=media_server.url("video.mp4"), audio=media_server.url("audio.m4a"))
            for _ in range(3)
        ]
        listed = list(client.dubs.list(limit=2))
        assert [dub.id for dub in listed] == [dub.id for dub in reversed(created)]  # newest first
        assert len(pages) == 2 and "cursor" in pages[1].params
        assert all(isinstance(dub, redub_client.Dub) for dub in listed)

        for dub in created:
            dub.wait(timeout=WAIT_S, poll_interval=0.2)
        assert {dub.status for dub in created} == {"succeeded"}
        assert len(list(client.dubs.list(status="succeeded", limit=1))) == 3
        assert list(client.dubs.list(status="failed")) == []


def test_cancel_and_a_canceled_dub_refuses_to_download(
    redub: redub_client.Redub, media_server: MediaServer, tmp_path: Path
) -> None:
    # The slow URL trickles the video out over ~2 s, so the cancel lands while the dub is queued or fetching.
    dub = redub.dubs.create(video=media_server.url("slow/video.mp4"), audio=media_server.url("audio.m4a"))
    canceled = redub.dubs.cancel(dub.id)
    assert canceled.id == dub.id
    assert canceled.status == "canceled" or canceled.cancel_requested
    dub.wait(timeout=WAIT_S, poll_interval=0.2)
    assert dub.status == "canceled"

    with pytest.raises(redub_client.InvalidRequestError) as caught:
        dub.download(tmp_path / "never.mp4")
    assert caught.value.code == "output_not_ready"
    assert not (tmp_path / "never.mp4").exists()
    # The server refuses the same way when asked directly.
    with pytest.raises(redub_client.InvalidRequestError) as direct:
        redub.dubs.download(dub.id, tmp_path / "never.mp4")
    assert direct.value.status == 409 and direct.value.code == "output_not_ready"


class _LoseFirstCreateAnswer(httpx.BaseTransport):
    """Delivers every request to the real server, but drops the answer to the first `POST /v1/dubs`
    as a broken connection would: the job exists, the client does not know it."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.creates: list[httpx.Request] = []
        self.answers: list[httpx.Response] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path == "/v1/dubs":
            self.creates.append(request)
            if len(self.creates) == 1:
                response.read()
                response.close()
                raise httpx.ReadError("connection reset while reading the answer", request=request)
            self.answers.append(response)
        return response

    def close(self) -> None:
        self.inner.close()


def test_a_retried_create_makes_one_job(api_url: str, account: Caller, media_server: MediaServer) -> None:
    transport = _LoseFirstCreateAnswer()
    http = httpx.Client(transport=transport)
    with redub_client.Redub(api_key=account.key, base_url=api_url, http_client=http) as client:
        dub = client.dubs.create(video=media_server.url("video.mp4"), audio=media_server.url("audio.m4a"))
        assert len(transport.creates) == 2
        keys = {request.headers["Idempotency-Key"] for request in transport.creates}
        assert len(keys) == 1  # the same key on the retry
        assert transport.answers[0].headers["Idempotent-Replayed"] == "true"
        assert [item.id for item in client.dubs.list()] == [dub.id]

        # A key given by the caller: the second call replays the first job.
        key = f"order-{uuid.uuid4()}"
        first = client.dubs.create(
            video=media_server.url("video.mp4"), audio=media_server.url("audio.m4a"), idempotency_key=key
        )
        second = client.dubs.create(
            video=media_server.url("video.mp4"), audio=media_server.url("audio.m4a"), idempotency_key=key
        )
        assert first.id == second.id
        assert len(list(client.dubs.list())) == 2
        for item in client.dubs.list():
            item.wait(timeout=WAIT_S, poll_interval=0.2)


def test_models_and_preflight(redub: redub_client.Redub, media_server: MediaServer) -> None:
    models = redub.models.list()
    by_id = {model.id: model for model in models}
    assert by_id["passthrough"].default and by_id["passthrough"].renderer == "passthrough"
    assert sum(model.default for model in models) == 1

    preflight = redub.preflights.create(
        video=media_server.url("video.mp4"), audio=media_server.url("audio.m4a"), sync_mode="cut_off"
    )
    assert preflight.object == "dub_preflight"
    done = redub.preflights.wait(preflight.id, timeout=WAIT_S, poll_interval=0.2)
    assert done.status == "succeeded", done.error
    assert done.report is not None and done.report["plan"]["mode"] == "cut_off"
    assert redub.preflights.get(preflight.id).status == "succeeded"


def test_wait_raises_timeout(redub: redub_client.Redub, media_server: MediaServer) -> None:
    dub = redub.dubs.create(video=media_server.url("slow/video.mp4"), audio=media_server.url("audio.m4a"))
    with pytest.raises(redub_client.Timeout) as caught:
        dub.wait(timeout=0, poll_interval=0.1)
    assert caught.value.code == "wait_timeout"
    assert isinstance(caught.value, redub_client.RedubError)
    redub.dubs.cancel(dub.id)
