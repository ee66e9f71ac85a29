"""HTTP with retries: exponential backoff and jitter on connection errors, 429 and 5xx (honouring
`Retry-After`), never on other 4xx; every error answer becomes a typed exception."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from redub_client._errors import APIConnectionError, RedubError, Timeout, error_from_response
from redub_client._retry import retry_delay, should_retry_status
from redub_client._version import __version__

DEFAULT_BASE_URL = "http://localhost:8000"
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_RETRIES = 3


def client_settings(api_key: str | None, base_url: str | None) -> tuple[str, dict[str, str]]:
    """The base URL and default headers; the key and URL fall back to REDUB_API_KEY and REDUB_BASE_URL."""
    key = api_key or os.environ.get("REDUB_API_KEY")
    if not key:
        raise RedubError("no API key: pass api_key=... or set REDUB_API_KEY", code="missing_api_key")
    url = (base_url or os.environ.get("REDUB_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    headers = {
        "Authorization": f"Bearer {key}",
        "User-Agent": f"redub-python/{__version__}",
        "Accept": "application/json",
    }
    return url, headers


def transport_error(error: httpx.TransportError) -> RedubError:
    if isinstance(error, httpx.TimeoutException):
        return Timeout(f"no answer in time: {error!r}", code="request_timeout", retryable=True)
    return APIConnectionError(f"connection failed: {error!r}", code="connection_error", retryable=True)


class SyncTransport:
    def __init__(
        self,
        api_key: str | None,
        base_url: str | None,
        timeout: float | httpx.Timeout,
        max_retries: int,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url, headers = client_settings(api_key, base_url)
        self.max_retries = max_retries
        self.timeout = timeout
        self.http = http_client or httpx.Client(timeout=timeout)
        self.http.headers.update(headers)
        # Presigned download links carry their own authorization; the API key never goes to storage.
        self.plain = httpx.Client(timeout=timeout, follow_redirects=True)
        self.sleep: Callable[[float], None] = time.sleep

    def url(self, path: str) -> str:
        return self.base_url + path

    def close(self) -> None:
        self.http.close()
        self.plain.close()

    def send(
        self,
        make: Callable[[], httpx.Request],
        *,
        client: httpx.Client | None = None,
        stream: bool = False,
        replayable: bool = True,
    ) -> httpx.Response:
        """Sends `make()` (a fresh request per attempt), retrying what may succeed later."""
        http = client or self.http
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = http.send(make(), stream=stream)
            except httpx.TransportError as failure:
                error = transport_error(failure)
            else:
                if response.status_code < 400:
                    return response
                response.read()
                response.close()
                error = error_from_response(response)
                if not should_retry_status(response.status_code):
                    raise error
            delay = retry_delay(attempt, response) if attempt < self.max_retries and replayable else None
            if delay is None:
                raise error
            self.sleep(delay)
            attempt += 1

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        def make() -> httpx.Request:
            return self.http.build_request(method, self.url(path), json=json, params=params, headers=headers)

        return self.send(make)


class AsyncTransport:
    def __init__(
        self,
        api_key: str | None,
        base_url: str | None,
        timeout: float | httpx.Timeout,
        max_retries: int,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url, headers = client_settings(api_key, base_url)
        self.max_retries = max_retries
        self.timeout = timeout
        self.http = http_client or httpx.AsyncClient(timeout=timeout)
        self.http.headers.update(headers)
        self.plain = httpx.AsyncClient(timeout=timeout, follow_redirects=True)
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def url(self, path: str) -> str:
        return self.base_url + path

    async def close(self) -> None:
        await self.http.aclose()
        await self.plain.aclose()

    async def send(
        self,
        make: Callable[[], httpx.Request],
        *,
        client: httpx.AsyncClient | None = None,
        stream: bool = False,
        replayable: bool = True,
    ) -> httpx.Response:
        http = client or self.http
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await http.send(make(), stream=stream)
            except httpx.TransportError as failure:
                error = transport_error(failure)
            else:
                if response.status_code < 400:
                    return response
                await response.aread()
                await response.aclose()
                error = error_from_response(response)
                if not should_retry_status(response.status_code):
                    raise error
            delay = retry_delay(attempt, response) if attempt < self.max_retries and replayable else None
            if delay is None:
                raise error
            await self.sleep(delay)
            attempt += 1

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        def make() -> httpx.Request:
            return self.http.build_request(method, self.url(path), json=json, params=params, headers=headers)

        return await self.send(make)
