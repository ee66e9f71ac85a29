"""Retries: connection errors, 429 and 5xx are retried with backoff, honouring Retry-After; other 4xx never.

Only these tests use a loopback stub server: the real one does not answer 503 or 429 on demand. The
client's pause hook records each delay instead of sleeping, so the chosen delays are checked exactly."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redub_client

from tests.conftest import _serve, free_port

MODELS = {"object": "list", "data": [{"id": "passthrough", "default": True, "renderer": "passthrough",
                                      "description": "audio only", "config": None, "trained": None,
                                      "created_at": None, "eval": None}]}  # fmt: skip
DUB = {
    "id": "6f1c6a4e-1d7e-4a8e-9a53-0d6f7f0c1a11",
    "object": "dub",
    "status": "queued",
    "created_at": "2026-12-03T10:00:00Z",
    "updated_at": "2026-12-03T10:00:00Z",
    "started_at": None,
    "finished_at": None,
    "sync_mode": "auto",
    "input": {"video_url": "https://a/v.mp4", "audio_url": "https://a/a.m4a"},
    "metadata": {},
    "progress": {"stage": "queued", "percent": 0.0},
    "cancel_requested": False,
    "output": None,
    "error": None,
    "webhook_url": None,
    "webhook_events": ["dub.succeeded", "dub.failed", "dub.canceled"],
    "speakers": None,
    "on_no_face": "passthrough",
    "model": "passthrough",
    "analysis": None,
    "frames_rendered": None,
}


def problem(status: int, code: str) -> dict[str, Any]:
    return {"status": status, "code": code, "detail": f"stub {code}", "retryable": status >= 500}


@dataclass
class Stub:
    """Answers requests in turn from `answers` (status, headers, JSON body); the last one repeats."""

    url: str = ""
    answers: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def stub() -> Iterator[Stub]:
    state = Stub()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.requests.append((self.command, self.path, dict(self.headers.items())))
                status, headers, body = state.answers.pop(0) if len(state.answers) > 1 else state.answers[0]
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header(
                "Content-Type", "application/problem+json" if status >= 400 else "application/json"
            )
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = answer
        do_POST = answer

    server, state.url = _serve(Handler)
    yield state
    server.shutdown()


def client_for(url: str, max_retries: int = 3) -> tuple[redub_client.Redub, list[float]]:
    client = redub_client.Redub(api_key="rdb_test", base_url=url, max_retries=max_retries, timeout=5)
    pauses: list[float] = []
    client._transport.sleep = pauses.append
    return client, pauses


def test_503_then_429_are_retried_after_the_retry_after_they_ask_for(stub: Stub) -> None:
    stub.answers = [
        (503, {"Retry-After": "2"}, problem(503, "unavailable")),
        (429, {"Retry-After": "1"}, problem(429, "rate_limited")),
        (200, {}, MODELS),
    ]
    client, pauses = client_for(stub.url)
    models = client.models.list()
    assert [model.id for model in models] == ["passthrough"]
    assert pauses == [2.0, 1.0]
    assert len(stub.requests) == 3


def test_without_retry_after_the_backoff_grows_with_jitter(stub: Stub) -> None:
    stub.answers = [(503, {}, problem(503, "a")), (502, {}, problem(502, "b")), (500, {}, problem(500, "c"))]
    stub.answers.append((200, {}, MODELS))
    client, pauses = client_for(stub.url)
    client.models.list()
    assert len(pauses) == 3
    for attempt, pause in enumerate(pauses):
        ceiling = 0.5 * 2**attempt
        assert ceiling / 2 <= pause <= ceiling


def test_retries_stop_after_max_retries_with_a_typed_error(stub: Stub) -> None:
    stub.answers = [(503, {"Retry-After": "0"}, problem(503, "unavailable"))]
    client, pauses = client_for(stub.url, max_retries=2)
    with pytest.raises(redub_client.ServerError) as caught:
        client.models.list()
    assert caught.value.status == 503 and caught.value.code == "unavailable" and caught.value.retryable
    assert len(stub.requests) == 3 and pauses == [0.0, 0.0]


def test_a_retry_after_beyond_a_minute_goes_to_the_caller(stub: Stub) -> None:
    stub.answers = [(429, {"Retry-After": "3600"}, problem(429, "rate_limited"))]
    client, pauses = client_for(stub.url)
    with pytest.raises(redub_client.RateLimitError) as caught:
        client.models.list()
    assert caught.value.retry_after == 3600.0 and caught.value.code == "rate_limited"
    assert len(stub.requests) == 1 and pauses == []


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_other_4xx_are_never_retried(stub: Stub, status: int) -> None:
    stub.answers = [(status, {"Retry-After": "1"}, problem(status, "nope")), (200, {}, MODELS)]
    client, pauses = client_for(stub.url)
    with pytest.raises(redub_client.APIStatusError) as caught:
        client.models.list()
    assert caught.value.status == status
    assert len(stub.requests) == 1 and pauses == []


def test_a_retried_create_sends_the_same_idempotency_key(stub: Stub) -> None:
    stub.answers = [(503, {}, problem(503, "unavailable")), (500, {}, problem(500, "x")), (202, {}, DUB)]
    client, _ = client_for(stub.url)
    dub = client.dubs.create(video="https://a/v.mp4", audio="https://a/a.m4a")
    assert str(dub.id) == DUB["id"]
    keys = [headers["Idempotency-Key"] for method, path, headers in stub.requests]
    assert len(keys) == 3 and len(set(keys)) == 1
    # A new call gets a new key.
    client.dubs.create(video="https://a/v.mp4", audio="https://a/a.m4a")
    assert stub.requests[-1][2]["Idempotency-Key"] != keys[0]


def test_an_upload_from_a_stream_that_cannot_rewind_is_not_retried(stub: Stub) -> None:
    class OneWay:
        name = "clip.mp4"

        def __init__(self) -> None:
            self.left = b"x" * 1000

        def read(self, size: int = -1) -> bytes:
            chunk, self.left = self.left[:size], self.left[size:]
            return chunk

        def seekable(self) -> bool:
            return False

    stub.answers = [(503, {}, problem(503, "unavailable"))]
    client, pauses = client_for(stub.url)
    with pytest.raises(redub_client.ServerError):
        client.files.upload(OneWay())  # type: ignore[arg-type]
    assert len(stub.requests) == 1 and pauses == []


def test_connection_errors_are_retried_then_raised() -> None:
    client, pauses = client_for(f"http://127.0.0.1:{free_port()}", max_retries=2)
    with pytest.raises(redub_client.APIConnectionError) as caught:
        client.models.list()
    assert caught.value.status is None and caught.value.retryable
    assert len(pauses) == 2


def test_a_real_pause_is_taken(stub: Stub) -> None:
    # Without the recording hook: the client really waits out Retry-After and then succeeds.
    stub.answers = [(503, {"Retry-After": "1"}, problem(503, "unavailable")), (200, {}, MODELS)]
    with redub_client.Redub(api_key="rdb_test", base_url=stub.url) as client:
        assert client.models.list()[0].id == "passthrough"
    assert len(stub.requests) == 2
