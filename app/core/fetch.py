"""The one SSRF-safe way to fetch a URL given by a customer (media inputs, and webhook deliveries).

Each hop: parse, allow only http(s), resolve the host once, refuse if any address is not public, then connect
to that exact address (Host header and TLS SNI keep the name), so a second DNS answer cannot redirect the
connection (DNS rebinding). Redirects are followed by hand and each target is checked again. Size, total
time and redirect count are capped, and the first bytes must look like a media container.

Time is enforced on every socket operation, not per chunk: a server dripping one byte a second cannot keep a
fetch past its deadline (each read may wait only for what is left of it), must keep up the caller's minimum
transfer rate, and a caller's cancellation is polled while the fetch waits. Name resolution has a timeout too.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import logging
import socket
import ssl
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpcore
import httpx

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Cloud metadata endpoints stay refused even when private addresses are allowed for development.
_ALWAYS_REFUSED = [
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("0.0.0.0/8"),
    ipaddress.ip_network("::/128"),
]
_SNIFF_BYTES = 4096
# Cancellation, the deadline and the rate are checked every POLL_S while a socket waits.
POLL_S = 0.5
DNS_TIMEOUT_S = 3.0
# getaddrinfo cannot be interrupted: lookups run on a pool of their own and callers stop waiting at their
# timeout, so a slow DNS server holds at most these threads, never the caller's (an API request's) thread.
# Names that never answer each hold a thread for the system resolver's own timeout (RES_OPTIONS shortens it).
_RESOLVER = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="dns")
# Of a webhook receiver's answer only the status matters; this much of its body is read, then dropped.
RESPONSE_READ_BYTES = 4096


class FetchError(Exception):
    """A fetch that did not give usable media; `code` is stable and ends up in the job's error.

    `retryable`: whether the same request may succeed later (a timeout, a 5xx, a refused connection), not
    when the answer will stay the same (403, 404, a redirect loop, not media). Default: by code."""

    def __init__(self, code: str, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = code in (FETCH_FAILED, FETCH_TIMEOUT) if retryable is None else retryable

    def for_input(self, field: str) -> FetchError:
        """The same error, its message naming the request field it came from (`video_url: …`)."""
        return FetchError(self.code, f"{field}: {self.message}", retryable=self.retryable)


# HTTP answers that may change if asked again later; any other 4xx will not.
_TRANSIENT_STATUSES = frozenset({408, 425, 429})


URL_NOT_ALLOWED = "url_not_allowed"
FETCH_FAILED = "fetch_failed"
FETCH_TOO_LARGE = "fetch_too_large"
FETCH_TIMEOUT = "fetch_timeout"
NOT_MEDIA = "not_media"
FETCH_CANCELED = "canceled"


@dataclass(frozen=True)
class FetchResult:
    path: Path
    size: int
    content_type: str
    final_url: str


@dataclass
class _Guard:
    """The limits of one fetch, checked before and while every socket operation waits."""

    deadline: float
    min_bytes_per_s: float = 0.0
    rate_window_s: float = 10.0
    is_canceled: Callable[[], bool] | None = None
    what: str = "The download"
    window_start: float = field(default_factory=time.monotonic)
    window_bytes: int = 0

    def check(self) -> float:
        """Raise if the fetch must stop now; else how long the next wait may last."""
        now = time.monotonic()
        if now >= self.deadline:
            raise FetchError(FETCH_TIMEOUT, f"{self.what} took too long.")
        if self.is_canceled is not None and self.is_canceled():
            raise FetchError(FETCH_CANCELED, f"{self.what} was canceled.")
        if self.min_bytes_per_s > 0 and now - self.window_start >= self.rate_window_s:
            rate = self.window_bytes / (now - self.window_start)
            if rate < self.min_bytes_per_s:
                raise FetchError(
                    FETCH_TIMEOUT,
                    f"{self.what} was too slow ({rate:.0f} bytes/s, at least {self.min_bytes_per_s:.0f}).",
                )
            self.window_start, self.window_bytes = now, 0
        return min(self.deadline - now, POLL_S)

    def wait_for(self, timeout: float | None) -> float:
        """A whole socket operation (connect, TLS handshake, write) may wait no longer than the deadline."""
        self.check()
        left = self.deadline - time.monotonic()
        return left if timeout is None else min(timeout, left)


class _GuardedStream(httpcore.NetworkStream):
    """A socket whose reads wait in short slices, so the guard's deadline, rate and cancellation apply to
    every read (httpcore would give each read the whole read timeout again)."""

    def __init__(self, inner: httpcore.NetworkStream, guard: _Guard) -> None:
        self.inner = inner
        self.guard = guard

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        started = time.monotonic()
        while True:
            wait = self.guard.check()
            if timeout is not None:
                left = timeout - (time.monotonic() - started)
                if left <= 0:
                    raise httpcore.ReadTimeout("timed out")
                wait = min(wait, left)
            try:
                data = self.inner.read(max_bytes, wait)
            except httpcore.ReadTimeout:
                continue
            self.guard.window_bytes += len(data)
            return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, self.guard.wait_for(timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self.inner.start_tls(ssl_context, server_hostname, self.guard.wait_for(timeout))
        return _GuardedStream(tls, self.guard)

    def get_extra_info(self, info: str) -> typing.Any:
        return self.inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    def __init__(self, guard: _Guard) -> None:
        self.inner = httpcore.SyncBackend()
        self.guard = guard

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self.inner.connect_tcp(
            host, port, self.guard.wait_for(timeout), local_address, socket_options
        )
        return _GuardedStream(stream, self.guard)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise FetchError(URL_NOT_ALLOWED, "Unix sockets are not fetched.")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def _guarded_client(guard: _Guard, timeout: httpx.Timeout) -> httpx.Client:
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx builds the same pool; this one's sockets go through the guard.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False), network_backend=_GuardedBackend(guard)
    )
    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, transport=transport)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_allowed(address: IPAddress, *, allow_private: bool = False) -> bool:
    """Whether a connection to `address` may be made for a customer's URL."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.teredo is not None:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_allowed(embedded, allow_private=allow_private)
    if any(address in network for network in _ALWAYS_REFUSED):
        return False
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return False
    if allow_private and (address.is_private or address.is_loopback):
        return True
    return address.is_global


class HostRefused(FetchError):
    """The host has no address to fetch from: it does not resolve (in time), or not to a public address."""


def _getaddrinfo(host: str, port: int, timeout_s: float) -> list[typing.Any]:
    future = _RESOLVER.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        return future.result(timeout=max(timeout_s, 0.0))
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise


def resolve_pinned(
    host: str, port: int, *, allow_private: bool = False, timeout_s: float = DNS_TIMEOUT_S
) -> IPAddress:
    """Resolve `host` once, waiting at most `timeout_s`; refuse unless every address it has is allowed.
    Returns the one to connect to."""
    try:
        infos = _getaddrinfo(host, port, timeout_s)
    except concurrent.futures.TimeoutError as error:
        raise HostRefused(FETCH_TIMEOUT, f"Resolving host {host!r} took too long.") from error
    except (socket.gaierror, UnicodeError) as error:
        raise HostRefused(FETCH_FAILED, f"Cannot resolve host {host!r}.") from error
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise HostRefused(FETCH_FAILED, f"Host {host!r} has no address.")
    for address in addresses:
        if not address_allowed(address, allow_private=allow_private):
            raise HostRefused(URL_NOT_ALLOWED, f"Host {host!r} resolves to a non-public address.")
    return addresses[0]


def vet_url(url: str, *, allow_private: bool, dns_timeout_s: float, hint: str = "") -> None:
    """`check_url` for a request being admitted. A host that does not resolve, does not resolve in time or
    resolves to a non-public address gets one and the same answer (`url_not_allowed`), so the API cannot be
    used to learn which names exist on the internal network; `hint` is added to that answer."""
    try:
        check_url(url, allow_private=allow_private, dns_timeout_s=dns_timeout_s)
    except HostRefused as error:
        host = httpx.URL(url).host
        raise FetchError(
            URL_NOT_ALLOWED, f"Host {host!r} does not resolve to a public address.{hint}"
        ) from error


def check_url(
    url: str, *, allow_private: bool = False, dns_timeout_s: float = DNS_TIMEOUT_S
) -> tuple[httpx.URL, IPAddress]:
    """Parse and vet a URL; returns it with the address the connection must go to."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        raise FetchError(URL_NOT_ALLOWED, "Not a valid URL.") from error
    if parsed.scheme not in ("http", "https"):
        raise FetchError(URL_NOT_ALLOWED, "Only http and https URLs are allowed.")
    if not parsed.host:
        raise FetchError(URL_NOT_ALLOWED, "The URL has no host.")
    if parsed.userinfo:
        raise FetchError(URL_NOT_ALLOWED, "URLs with credentials are not allowed.")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed, resolve_pinned(parsed.host, port, allow_private=allow_private, timeout_s=dns_timeout_s)


def pinned_request(
    client: httpx.Client,
    method: str,
    url: httpx.URL,
    address: IPAddress,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Request:
    """A request that connects to `address` while speaking to `url`'s host (Host header, TLS SNI)."""
    host_header = url.host if url.port is None else f"{url.host}:{url.port}"
    all_headers = {"Host": host_header, **(headers or {})}
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return client.build_request(
        method,
        url.copy_with(host=str(address)),
        headers=all_headers,
        content=content,
        extensions=extensions,
    )


# Leading bytes of the containers the engine reads (offset, signature).
_MAGIC: list[tuple[int, bytes]] = [
    (4, b"ftyp"),  # MP4, MOV, M4A, 3GP
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"free"),
    (4, b"wide"),
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska, WebM
    (0, b"OggS"),
    (0, b"fLaC"),
    (0, b"ID3"),  # MP3 with tags
    (0, b"FLV"),
    (0, b"\x00\x00\x01\xba"),  # MPEG program stream
    (0, b"\x30\x26\xb2\x75"),  # ASF, WMV
    (0, b"#!AMR"),
    (0, b"caff"),
]


_ISO_BRANDS = {b"qt  ": "video/quicktime", b"M4A ": "audio/mp4", b"M4B ": "audio/mp4", b"3gp4": "video/3gpp"}
_SIMPLE_TYPES: list[tuple[int, bytes, str]] = [
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"FLV", "video/x-flv"),
    (0, b"\x00\x00\x01\xba", "video/mpeg"),
    (0, b"\x30\x26\xb2\x75", "video/x-ms-asf"),
    (0, b"#!AMR", "audio/amr"),
    (0, b"caff", "audio/x-caf"),
]


def media_type_of(head: bytes) -> str:
    """The media type the first bytes show (never what the sender claimed); `application/octet-stream`
    when they show nothing this service reads."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return _ISO_BRANDS.get(brand, "video/3gpp" if brand.startswith(b"3g") else "video/mp4")
    if head[4:8] in (b"moov", b"mdat", b"free", b"wide"):
        return "video/quicktime"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    for offset, magic, media_type in _SIMPLE_TYPES:
        if head[offset : offset + len(magic)] == magic:
            return media_type
    if head[:4] == b"RIFF":
        return {b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo", b"RF64": "audio/wav"}.get(
            head[8:12], "application/octet-stream"
        )
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio/aiff"
    if len(head) >= 377 and head[0] == head[188] == head[376] == 0x47:
        return "video/mp2t"
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        # ADTS AAC has layer bits 00; MP3 frames do not.
        return "audio/aac" if head[1] & 0x06 == 0 else "audio/mpeg"
    return "application/octet-stream"


def looks_like_media(head: bytes) -> bool:
    """Cheap content sniffing: refuses HTML error pages, JSON and the like before the engine sees them."""
    for offset, magic in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return True
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI ", b"RF64"):
        return True
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return True
    # MPEG transport stream: sync byte every 188 bytes.
    if len(head) >= 377 and head[0] == head[188] == head[376] == 0x47:
        return True
    # MP3 or ADTS AAC frame sync.
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0


def fetch_to_file(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    timeout_s: float,
    allow_private: bool = False,
    max_redirects: int = 5,
    min_bytes_per_s: float = 0.0,
    rate_window_s: float = 10.0,
    dns_timeout_s: float = DNS_TIMEOUT_S,
    is_canceled: Callable[[], bool] | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> FetchResult:
    """Download `url` to `dest` under the SSRF rules above; raises FetchError with a stable code.

    `timeout_s` bounds the whole fetch (redirects and name resolution included); `min_bytes_per_s` (0: no
    floor) must be kept up over every `rate_window_s`; `is_canceled` is polled while it waits and stops it
    with the code `canceled`. `on_progress(bytes_received, bytes_declared_or_None)` is called after each
    chunk; whatever it raises (a cancellation) stops the download and removes the partial file."""
    deadline = time.monotonic() + timeout_s
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
    guard = _Guard(deadline, min_bytes_per_s, rate_window_s, is_canceled)
    current = url
    with _guarded_client(guard, timeout) as client:
        for _hop in range(max_redirects + 1):
            guard.check()
            resolve_s = min(dns_timeout_s, deadline - time.monotonic())
            parsed, address = check_url(current, allow_private=allow_private, dns_timeout_s=resolve_s)
            # identity: the size cap then counts the bytes on the wire (no decompression bombs).
            headers = {"Accept": "*/*", "Accept-Encoding": "identity"}
            request = pinned_request(client, "GET", parsed, address, headers=headers)
            try:
                response = client.send(request, stream=True)
            except httpx.TimeoutException as error:
                raise FetchError(FETCH_TIMEOUT, "The server took too long to answer.") from error
            except httpx.HTTPError as error:
                raise FetchError(FETCH_FAILED, f"Could not connect: {type(error).__name__}.") from error
            try:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    if not location:
                        raise FetchError(FETCH_FAILED, "A redirect without a location.", retryable=False)
                    current = str(parsed.join(location))
                    continue
                if response.status_code != 200:
                    status = response.status_code
                    raise FetchError(
                        FETCH_FAILED,
                        f"The server answered HTTP {status}.",
                        retryable=status >= 500 or status in _TRANSIENT_STATUSES,
                    )
                return _save_body(
                    response,
                    dest,
                    str(parsed),
                    max_bytes=max_bytes,
                    deadline=deadline,
                    on_progress=on_progress,
                )
            finally:
                response.close()
    raise FetchError(FETCH_FAILED, f"More than {max_redirects} redirects.", retryable=False)


def _save_body(
    response: httpx.Response,
    dest: Path,
    final_url: str,
    *,
    max_bytes: int,
    deadline: float,
    on_progress: Callable[[int, int | None], None] | None,
) -> FetchResult:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(FETCH_TOO_LARGE, f"The file is larger than {max_bytes} bytes.")
    total = int(declared) if declared is not None and declared.isdigit() else None
    size = 0
    head = b""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with dest.open("wb") as out:
            # Unbuffered: each chunk is what one socket read returned, checked as it comes.
            for chunk in response.iter_raw():
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(FETCH_TOO_LARGE, f"The file is larger than {max_bytes} bytes.")
                if time.monotonic() > deadline:
                    raise FetchError(FETCH_TIMEOUT, "The download took too long.")
                if len(head) < _SNIFF_BYTES:
                    head += chunk[: _SNIFF_BYTES - len(head)]
                    # Stop early on an HTML page or similar instead of downloading all of it.
                    if len(head) >= 512 and not looks_like_media(head):
                        raise FetchError(NOT_MEDIA, "The URL does not point to a video or audio file.")
                out.write(chunk)
                if on_progress is not None:
                    on_progress(size, total)
    except httpx.TimeoutException as error:
        dest.unlink(missing_ok=True)
        raise FetchError(FETCH_TIMEOUT, "The download took too long.") from error
    except httpx.HTTPError as error:
        dest.unlink(missing_ok=True)
        raise FetchError(FETCH_FAILED, f"The download broke off: {type(error).__name__}.") from error
    except Exception:
        dest.unlink(missing_ok=True)
        raise
    if not looks_like_media(head):
        dest.unlink(missing_ok=True)
        raise FetchError(NOT_MEDIA, "The URL does not point to a video or audio file.")
    content_type = media_type_of(head)
    logger.info("fetched", extra={"url": final_url, "bytes": size})
    return FetchResult(path=dest, size=size, content_type=content_type, final_url=final_url)


def post_pinned(
    url: str,
    body: bytes,
    *,
    headers: dict[str, str],
    timeout_s: float,
    allow_private: bool = False,
) -> int:
    """POST `body` to a customer's URL under the same rules, not following redirects; returns the status.

    `timeout_s` bounds the whole exchange (connect, send, answer), and at most RESPONSE_READ_BYTES of the
    answer are read: a receiver cannot hold a sender longer, or make it hold a large body."""
    deadline = time.monotonic() + timeout_s
    parsed, address = check_url(url, allow_private=allow_private, dns_timeout_s=min(DNS_TIMEOUT_S, timeout_s))
    guard = _Guard(deadline, what="The endpoint's answer")
    with _guarded_client(guard, httpx.Timeout(timeout_s)) as client:
        request = pinned_request(client, "POST", parsed, address, headers=headers, content=body)
        try:
            response = client.send(request, stream=True)
            try:
                read = 0
                for chunk in response.iter_raw():
                    read += len(chunk)
                    if read >= RESPONSE_READ_BYTES:
                        break
            finally:
                response.close()
        except httpx.TimeoutException as error:
            raise FetchError(FETCH_TIMEOUT, "The endpoint took too long to answer.") from error
        except httpx.HTTPError as error:
            raise FetchError(FETCH_FAILED, f"Could not connect: {type(error).__name__}.") from error
        return response.status_code
