"""The SSRF-safe fetcher against a real local HTTP server: refusals with private addresses off, and the
caps, redirect checks and media sniffing with them on (as in development)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from pathlib import Path

import pytest

from app.core.fetch import (
    FETCH_CANCELED,
    FETCH_FAILED,
    FETCH_TIMEOUT,
    FETCH_TOO_LARGE,
    NOT_MEDIA,
    URL_NOT_ALLOWED,
    FetchError,
    address_allowed,
    fetch_to_file,
    looks_like_media,
    post_pinned,
)
from tests.conftest import MediaServer


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a00:1",
        "2002:7f00:1::",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not address_allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_allowed(ipaddress.ip_address(address))


def test_metadata_and_link_local_stay_refused_when_private_addresses_are_allowed() -> None:
    assert address_allowed(ipaddress.ip_address("10.0.0.5"), allow_private=True)
    assert address_allowed(ipaddress.ip_address("127.0.0.1"), allow_private=True)
    assert not address_allowed(ipaddress.ip_address("169.254.169.254"), allow_private=True)
    assert not address_allowed(ipaddress.ip_address("fd00:ec2::254"), allow_private=True)


def _refused_urls(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/video.mp4",
        f"http://localhost:{port}/video.mp4",
        f"http://2130706433:{port}/video.mp4",  # 127.0.0.1 as one decimal number
        f"http://0x7f000001:{port}/video.mp4",  # ... as hex
        f"http://0177.0.0.1:{port}/video.mp4",  # ... with an octal first part
        f"http://127.1:{port}/video.mp4",  # ... shortened
        f"http://[::1]:{port}/video.mp4",
        f"http://[::ffff:127.0.0.1]:{port}/video.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.1/video.mp4",
        "http://0.0.0.0/video.mp4",
        "file:///etc/passwd",
        "ftp://example.com/video.mp4",
        "gopher://127.0.0.1:6379/_INFO",
        "http://user:secret@example.com/video.mp4",
        "not a url",
    ]


def test_private_loopback_metadata_and_odd_notations_are_refused(
    media_server: MediaServer, tmp_path: Path
) -> None:
    port = int(media_server.base_url.rsplit(":", 1)[1])
    for url in _refused_urls(port):
        with pytest.raises(FetchError) as caught:
            fetch_to_file(url, tmp_path / "out", max_bytes=10**7, timeout_s=5)
        assert caught.value.code == URL_NOT_ALLOWED, url
        assert not (tmp_path / "out").exists()


def test_fetches_media_when_private_addresses_are_allowed(media_server: MediaServer, tmp_path: Path) -> None:
    result = fetch_to_file(
        media_server.url("video.mp4"),
        tmp_path / "video.mp4",
        max_bytes=10**7,
        timeout_s=10,
        allow_private=True,
    )
    assert result.path.read_bytes() == (media_server.directory / "video.mp4").read_bytes()
    assert result.size == (media_server.directory / "video.mp4").stat().st_size
    assert result.content_type == "video/mp4"


def test_every_redirect_is_checked_again(media_server: MediaServer, tmp_path: Path) -> None:
    url = media_server.url("redirect?to=http://169.254.169.254/latest/meta-data/")
    with pytest.raises(FetchError) as caught:
        fetch_to_file(url, tmp_path / "out", max_bytes=10**7, timeout_s=5, allow_private=True)
    assert caught.value.code == URL_NOT_ALLOWED


def test_redirects_are_followed_up_to_the_cap(media_server: MediaServer, tmp_path: Path) -> None:
    once = media_server.url(f"redirect?to={media_server.url('video.mp4')}")
    result = fetch_to_file(once, tmp_path / "a", max_bytes=10**7, timeout_s=5, allow_private=True)
    assert result.final_url.endswith("/video.mp4")
    twice = media_server.url("redirect?to=/redirect%3Fto%3D/video.mp4")
    with pytest.raises(FetchError) as caught:
        fetch_to_file(
            twice, tmp_path / "b", max_bytes=10**7, timeout_s=5, allow_private=True, max_redirects=1
        )
    assert caught.value.code == FETCH_FAILED


def test_size_cap(media_server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as caught:
        fetch_to_file(
            media_server.url("video.mp4"), tmp_path / "out", max_bytes=100, timeout_s=5, allow_private=True
        )
    assert caught.value.code == FETCH_TOO_LARGE
    assert not (tmp_path / "out").exists()


def test_time_cap(media_server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as caught:
        fetch_to_file(
            media_server.url("slow/video.mp4"),
            tmp_path / "out",
            max_bytes=10**7,
            timeout_s=0.5,
            allow_private=True,
        )
    assert caught.value.code == FETCH_TIMEOUT


def test_html_is_not_media(media_server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as caught:
        fetch_to_file(
            media_server.url("html"), tmp_path / "out", max_bytes=10**7, timeout_s=5, allow_private=True
        )
    assert caught.value.code == NOT_MEDIA


def test_http_errors_fail_with_their_status(media_server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as caught:
        fetch_to_file(
            media_server.url("status/404"), tmp_path / "out", max_bytes=10**7, timeout_s=5, allow_private=True
        )
    assert caught.value.code == FETCH_FAILED
    assert "404" in caught.value.message


def test_post_does_not_follow_redirects(media_server: MediaServer) -> None:
    # Webhook deliveries take a redirect as a failed attempt instead of following it somewhere else.
    status = post_pinned(
        media_server.url("redirect?to=/"), b"{}", headers={}, timeout_s=5, allow_private=True
    )
    assert status == 302
    with pytest.raises(FetchError) as caught:
        post_pinned("http://169.254.169.254/", b"{}", headers={}, timeout_s=5, allow_private=True)
    assert caught.value.code == URL_NOT_ALLOWED


def test_media_sniffing(media_server: MediaServer) -> None:
    assert looks_like_media((media_server.directory / "video.mp4").read_bytes()[:4096])
    assert looks_like_media((media_server.directory / "audio.m4a").read_bytes()[:4096])
    assert looks_like_media(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    assert not looks_like_media(b"<!doctype html><html>")
    assert not looks_like_media(b'{"error": "forbidden"}')


def test_requests_are_pinned_to_the_vetted_address() -> None:
    import httpx

    from app.core.fetch import check_url, pinned_request

    parsed, address = check_url("https://localhost:8443/video.mp4?x=1", allow_private=True)
    with httpx.Client() as client:
        request = pinned_request(client, "GET", parsed, address)
    # The connection goes to the address checked; the name only travels in Host and TLS SNI.
    assert request.url.host == str(address)
    assert request.url.port == 8443 and request.url.query == b"x=1"
    assert request.headers["host"] == "localhost:8443"
    assert request.extensions["sni_hostname"] == "localhost"


class DripServer:
    """A loopback server that answers one request by sending `prefix` whole, then `drip` one byte every
    `interval_s`; it records how many drip bytes went out before the client hung up (or it ran out)."""

    def __init__(self, prefix: bytes, drip: bytes, interval_s: float = 0.1) -> None:
        self.prefix, self.drip, self.interval_s = prefix, drip, interval_s
        self.sent = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/video.mp4"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            connection.recv(65536)
            try:
                connection.sendall(self.prefix)
                for byte in self.drip:
                    connection.sendall(bytes([byte]))
                    self.sent += 1
                    time.sleep(self.interval_s)
            except OSError:
                pass
        self.listener.close()

    def finished(self) -> int:
        self.thread.join(timeout=120)
        return self.sent


_MP4_HEAD = (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 12) * 4
# The drip lasts 40 s at 0.1 s a byte; every fetch below must hang up long before.
_DRIP = _MP4_HEAD * 5
_BODY_HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 100000\r\n\r\n"


def test_the_deadline_holds_against_a_server_sending_a_byte_at_a_time(tmp_path: Path) -> None:
    server = DripServer(_BODY_HEADERS, _DRIP)
    with pytest.raises(FetchError) as caught:
        fetch_to_file(server.url, tmp_path / "out", max_bytes=10**7, timeout_s=1.5, allow_private=True)
    assert caught.value.code == FETCH_TIMEOUT
    assert server.finished() < len(_DRIP)  # the fetcher hung up, the server did not run out
    assert not (tmp_path / "out").exists()


def test_the_deadline_holds_while_headers_trickle_in(tmp_path: Path) -> None:
    headers = b"X-Slow: " + b"a" * len(_DRIP)
    server = DripServer(b"HTTP/1.1 200 OK\r\n", headers)
    with pytest.raises(FetchError) as caught:
        fetch_to_file(server.url, tmp_path / "out", max_bytes=10**7, timeout_s=1.5, allow_private=True)
    assert caught.value.code == FETCH_TIMEOUT
    assert server.finished() < len(headers)


def test_a_download_below_the_minimum_rate_stops(tmp_path: Path) -> None:
    server = DripServer(_BODY_HEADERS, _DRIP)
    with pytest.raises(FetchError) as caught:
        fetch_to_file(
            server.url,
            tmp_path / "out",
            max_bytes=10**7,
            timeout_s=600,
            allow_private=True,
            min_bytes_per_s=1000,
            rate_window_s=1.0,
        )
    assert caught.value.code == FETCH_TIMEOUT
    assert "too slow" in caught.value.message
    assert server.finished() < len(_DRIP)


def test_cancellation_is_polled_while_the_download_waits(tmp_path: Path) -> None:
    server = DripServer(_BODY_HEADERS, _DRIP)
    with pytest.raises(FetchError) as caught:
        fetch_to_file(
            server.url,
            tmp_path / "out",
            max_bytes=10**7,
            timeout_s=600,
            allow_private=True,
            min_bytes_per_s=0,
            is_canceled=lambda: server.sent >= 5,
        )
    assert caught.value.code == FETCH_CANCELED
    assert 5 <= server.finished() < len(_DRIP)
    assert not (tmp_path / "out").exists()


class BlastServer:
    """Answers one request with `headers` and then `total` bytes as fast as it can; counts what went out."""

    def __init__(self, headers: bytes, total: int) -> None:
        self.headers, self.total = headers, total
        self.sent = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        block = b"x" * 65536
        with connection:
            connection.recv(65536)
            try:
                connection.sendall(self.headers)
                while self.sent < self.total:
                    connection.sendall(block)
                    self.sent += len(block)
            except OSError:
                pass
        self.listener.close()

    def finished(self) -> int:
        self.thread.join(timeout=120)
        return self.sent


def test_a_webhook_send_has_a_total_deadline() -> None:
    server = DripServer(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", b"a" * 400)
    with pytest.raises(FetchError) as caught:
        post_pinned(server.url, b"{}", headers={}, timeout_s=1.5, allow_private=True)
    assert caught.value.code == FETCH_TIMEOUT
    assert server.finished() < 400  # the sender hung up; it did not wait for the whole drip


def test_a_webhook_send_reads_only_the_start_of_a_huge_answer() -> None:
    total = 256 * 1024 * 1024
    server = BlastServer(f"HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n".encode(), total)
    assert post_pinned(server.url, b"{}", headers={}, timeout_s=30, allow_private=True) == 200
    assert server.finished() < total
