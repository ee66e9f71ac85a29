"""Customer URLs at request time: a host that does not resolve, resolves too slowly or resolves to a
non-public address gets one and the same answer (no mapping of internal DNS names through the API), and a
slow DNS server cannot hold the request's thread past `DNS_TIMEOUT_S`."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Caller, MediaServer

SLOW_HOST = "slow-dns.redub.test"


class SlowDns:
    """getaddrinfo that hangs for SLOW_HOST until released. A DNS server that does not answer cannot be
    put in front of this machine's resolver from a test, so this one name's lookup is replaced."""

    def __init__(self) -> None:
        self.real = socket.getaddrinfo
        self.release = threading.Event()
        self.asked = threading.Event()
        self.answered = threading.Event()

    def __call__(self, host: Any, *args: Any, **kwargs: Any) -> Any:
        if host != SLOW_HOST:
            return self.real(host, *args, **kwargs)
        self.asked.set()
        self.release.wait(60)
        self.answered.set()
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


@pytest.fixture
def strict(monkeypatch: pytest.MonkeyPatch, service_env: dict[str, str]) -> Iterator[SlowDns]:
    """Private addresses refused (as in production), a short DNS timeout, and a slow name."""
    from app.core.config import get_settings

    slow = SlowDns()
    monkeypatch.setenv("REDUB_ALLOW_PRIVATE_URLS", "false")
    monkeypatch.setenv("REDUB_DNS_TIMEOUT_S", "0.5")
    monkeypatch.setattr(socket, "getaddrinfo", slow)
    get_settings.cache_clear()
    yield slow
    slow.release.set()
    monkeypatch.undo()
    get_settings.cache_clear()


def _refusal(client: TestClient, caller: Caller, url: str, media_server: MediaServer) -> Any:
    # video_url is checked first, so the loopback audio_url of the test server is never reached.
    body = {"video_url": url, "audio_url": media_server.url("audio.m4a")}
    response = client.post("/v1/dubs", json=body, headers=caller.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    # Everything but the host the caller gave must be the same, whatever happened to the lookup.
    return {**problem, "detail": problem["detail"].replace(_host(url), "HOST"), "errors": None}


def _host(url: str) -> str:
    return url.split("/")[2].split(":")[0]


URLS = ["http://localhost:8080/a.mp4", "http://no-such-host.invalid/a.mp4", f"http://{SLOW_HOST}/a.mp4"]


def test_unresolvable_slow_and_private_hosts_get_one_answer(
    client: TestClient, caller: Caller, media_server: MediaServer, strict: SlowDns
) -> None:
    private, missing, slow = (_refusal(client, caller, url, media_server) for url in URLS)
    assert private == missing == slow
    assert private["code"] == "url_not_allowed" and private["param"] == "video_url"
    assert "does not resolve to a public address" in private["detail"]
    # The answer came while the lookup was still hanging: it did not wait for DNS.
    assert strict.asked.is_set() and not strict.answered.is_set()


def test_webhook_urls_get_one_answer_too(strict: SlowDns) -> None:
    from app.core.errors import ApiError
    from app.webhooks.service import validate_url

    answers = []
    for url in URLS:
        with pytest.raises(ApiError) as caught:
            validate_url(url)
        answers.append((caught.value.code, caught.value.message.replace(_host(url), "HOST")))
    assert answers[0][0] == "webhook_url_not_allowed"
    assert answers[0] == answers[1] == answers[2]
