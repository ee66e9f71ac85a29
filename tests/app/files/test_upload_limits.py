"""Uploads are refused before their body is read: no key, a declared size over the cap, or (length not
declared) as soon as the cap is passed. Over a real socket, since that is where the body would be read."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
import uvicorn

from tests.conftest import Caller, free_port, reachable, wait_until

CAP = 64 * 1024


@pytest.fixture(scope="module")
def live_api(service_env: dict[str, str]) -> Iterator[tuple[str, int]]:
    from app.main import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: reachable("127.0.0.1", port), 30, "api")
    yield "127.0.0.1", port
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def small_cap(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from app.core.config import get_settings

    monkeypatch.setenv("REDUB_MAX_UPLOAD_BYTES", str(CAP))
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _request_head(port: int, headers: dict[str, str]) -> bytes:
    lines = ["POST /v1/files HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer_while_sending(
    address: tuple[str, int], head: bytes, body_chunks: Iterator[bytes]
) -> tuple[int, int]:
    """Send the head, then body chunks until the server answers; returns (status, body bytes sent).
    The socket timeout only stops a hung test: a server that waits for the whole body never answers."""
    sent = 0
    with socket.create_connection(address, timeout=20) as connection:
        connection.sendall(head)
        connection.setblocking(False)
        answer = b""
        for chunk in body_chunks:
            with contextlib.suppress(BlockingIOError):
                answer += connection.recv(65536)
            if answer:
                break
            try:
                connection.sendall(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        connection.settimeout(20)
        while b"\r\n" not in answer:
            answer += connection.recv(65536)
    return int(answer.split(b" ", 2)[1]), sent


def _multipart_head(port: int, extra: dict[str, str]) -> bytes:
    return _request_head(port, {"Content-Type": "multipart/form-data; boundary=xyz", **extra})


def _forever(chunk: bytes = b"\x00" * 16384, total: int = 40 * 1024**2) -> Iterator[bytes]:
    yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
    for _ in range(total // len(chunk)):
        yield chunk


def test_a_declared_size_over_the_cap_is_413_before_the_body(
    live_api: tuple[str, int], caller: Caller, small_cap: None
) -> None:
    head = _multipart_head(live_api[1], {**caller.headers, "Content-Length": str(10 * 1024**3)})
    status, sent = _answer_while_sending(live_api, head, _forever())
    assert status == 413
    assert sent < 16 * 1024**2


def test_an_unauthenticated_upload_is_401_before_the_body(live_api: tuple[str, int]) -> None:
    head = _multipart_head(live_api[1], {"Content-Length": str(286 * 1024**2)})
    status, sent = _answer_while_sending(live_api, head, _forever())
    assert status == 401
    assert sent < 16 * 1024**2


def test_an_undeclared_length_stops_at_the_cap_with_413(
    live_api: tuple[str, int], caller: Caller, small_cap: None
) -> None:
    head = _multipart_head(live_api[1], {**caller.headers, "Transfer-Encoding": "chunked"})

    def chunked() -> Iterator[bytes]:
        for piece in _forever():
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"

    status, sent = _answer_while_sending(live_api, head, chunked())
    assert status == 413
    assert sent < 16 * 1024**2
