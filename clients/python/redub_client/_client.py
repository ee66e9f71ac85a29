"""The entry points: `Redub` (blocking) and `AsyncRedub` (asyncio), each with the same resources."""

from __future__ import annotations

from types import TracebackType

import httpx

from redub_client._transport import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_S, AsyncTransport, SyncTransport
from redub_client.dubs import AsyncDubs, Dubs
from redub_client.files import AsyncFiles, Files
from redub_client.models import AsyncModels, Models
from redub_client.preflights import AsyncPreflights, Preflights


class Redub:
    """`Redub(api_key=..., base_url=...)`; the key and URL default to REDUB_API_KEY and REDUB_BASE_URL.

    `timeout` (seconds, or an `httpx.Timeout`) bounds each request; `max_retries` how often a connection
    error, 429 or 5xx is retried (with exponential backoff and jitter, honouring Retry-After)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._transport = SyncTransport(api_key, base_url, timeout, max_retries, http_client)
        self.files = Files(self._transport)
        self.dubs = Dubs(self._transport, self.files)
        self.models = Models(self._transport)
        self.preflights = Preflights(self._transport, self.files)

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Redub:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class AsyncRedub:
    """As `Redub`, for asyncio: every call is awaited, `dubs.list()` is an async iterator."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._transport = AsyncTransport(api_key, base_url, timeout, max_retries, http_client)
        self.files = AsyncFiles(self._transport)
        self.dubs = AsyncDubs(self._transport, self.files)
        self.models = AsyncModels(self._transport)
        self.preflights = AsyncPreflights(self._transport, self.files)

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> AsyncRedub:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()
