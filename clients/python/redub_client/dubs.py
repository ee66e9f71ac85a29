"""`client.dubs`: create, get, list, cancel; a `Dub` waits for itself and downloads its output."""

from __future__ import annotations

import asyncio
import builtins
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import httpx
from pydantic import PrivateAttr

from redub_client._errors import InvalidRequestError, RedubError, Timeout
from redub_client._media import CHUNK_SIZE, MediaInput, ProgressCallback
from redub_client._requests import dub_body, new_idempotency_key
from redub_client._retry import backoff_delay
from redub_client._transport import transport_error
from redub_client.files import AsyncFiles, Files, async_media_reference, media_reference
from redub_client.types import DubData, MetadataValue, OnNoFace, Speaker, SyncMode

if TYPE_CHECKING:
    from redub_client._transport import AsyncTransport, SyncTransport

DEFAULT_WAIT_S = 600.0
DEFAULT_POLL_S = 2.0


def _target(dub_id: uuid.UUID, path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    return target / f"dub-{dub_id}.mp4" if target.is_dir() else target


def _refuse_unless_succeeded(dub: DubData) -> None:
    if dub.status != "succeeded":
        raise InvalidRequestError(
            f"dub {dub.id} is {dub.status}; only a succeeded dub has an output"
            + (" (call wait() first)" if not dub.done else ""),
            code="output_not_ready",
            retryable=not dub.done,
        )


def _wait_timeout(dub: DubData, timeout: float) -> Timeout:
    return Timeout(
        f"dub {dub.id} is still {dub.status} after {timeout:g} s", code="wait_timeout", retryable=True
    )


def _output_location(transport_url: str, response: httpx.Response) -> str:
    location = response.headers.get("Location")
    if response.status_code not in (301, 302, 303, 307, 308) or not location:
        raise RedubError(
            f"expected a redirect to the output, got HTTP {response.status_code}",
            status=response.status_code,
            code="unexpected_response",
        )
    return str(urljoin(transport_url, location))


class Dub(DubData):
    """A dub job, bound to the client that fetched it."""

    _dubs: Dubs | None = PrivateAttr(default=None)

    def _resource(self) -> Dubs:
        if self._dubs is None:
            raise RedubError("this Dub is not bound to a client; use client.dubs.get(id)", code="unbound")
        return self._dubs

    def _update(self, fresh: DubData) -> Dub:
        for name in type(fresh).model_fields:
            setattr(self, name, getattr(fresh, name))
        self.__pydantic_extra__ = fresh.__pydantic_extra__
        return self

    def refresh(self) -> Dub:
        """Reads the dub again, in place."""
        return self._update(self._resource().get(self.id))

    def cancel(self) -> Dub:
        return self._update(self._resource().cancel(self.id))

    def wait(self, timeout: float | None = DEFAULT_WAIT_S, poll_interval: float = DEFAULT_POLL_S) -> Dub:
        """Refreshes until the dub succeeds, fails or is canceled, and returns it (check `status`).
        Raises `redub_client.Timeout` when `timeout` seconds pass first (None waits for ever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise _wait_timeout(self, timeout or 0.0)
            time.sleep(poll_interval if remaining is None else min(poll_interval, remaining))
            self.refresh()
        return self

    def download(self, path: str | os.PathLike[str]) -> Path:
        """Streams the dubbed MP4 to `path` (a file, or a folder to put `dub-<id>.mp4` in) and returns
        where it went. Refuses (`output_not_ready`) unless the dub has succeeded."""
        if not self.done:
            self.refresh()
        _refuse_unless_succeeded(self)
        return self._resource().download(self.id, path)


class Dubs:
    def __init__(self, transport: SyncTransport, files: Files) -> None:
        self._transport = transport
        self._files = files

    def _bind(self, data: Any) -> Dub:
        dub = Dub.model_validate(data)
        dub._dubs = self
        return dub

    def create(
        self,
        *,
        video: MediaInput,
        audio: MediaInput,
        sync_mode: SyncMode | None = None,
        webhook_url: str | None = None,
        webhook_events: Sequence[str] | None = None,
        speakers: Sequence[Speaker | Mapping[str, Any]] | None = None,
        on_no_face: OnNoFace | None = None,
        model: str | None = None,
        metadata: Mapping[str, MetadataValue] | None = None,
        idempotency_key: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> Dub:
        """Starts a dub. `video` and `audio` are each an http(s) URL, a local path or a binary file object
        (paths and files are uploaded first; `progress(bytes_sent, total)` follows each upload). One
        Idempotency-Key (given or generated) covers every retry of this call, so it creates one job."""
        media = {
            **media_reference(self._files, "video", video, progress),
            **media_reference(self._files, "audio", audio, progress),
        }
        body = dub_body(
            media,
            sync_mode=sync_mode,
            webhook_url=webhook_url,
            webhook_events=webhook_events,
            speakers=speakers,
            on_no_face=on_no_face,
            model=model,
            metadata=metadata,
        )
        headers = {"Idempotency-Key": idempotency_key or new_idempotency_key()}
        return self._bind(self._transport.request("POST", "/v1/dubs", json=body, headers=headers).json())

    def get(self, dub_id: str | uuid.UUID) -> Dub:
        return self._bind(self._transport.request("GET", f"/v1/dubs/{dub_id}").json())

    def cancel(self, dub_id: str | uuid.UUID) -> Dub:
        """Cancels a queued dub at once; a running one stops at its next segment (`cancel_requested`)."""
        return self._bind(self._transport.request("POST", f"/v1/dubs/{dub_id}/cancel").json())

    def download(self, dub_id: str | uuid.UUID, path: str | os.PathLike[str]) -> Path:
        """Follows `GET /v1/dubs/{id}/output` to its presigned link and streams the MP4 to `path`."""
        transport = self._transport
        response = transport.request("GET", f"/v1/dubs/{dub_id}/output")
        url = _output_location(transport.url("/"), response)
        target = _target(uuid.UUID(str(dub_id)), path)
        partial = target.with_name(target.name + ".part")
        target.parent.mkdir(parents=True, exist_ok=True)
        attempts = 0
        while True:
            stream = transport.send(
                lambda: transport.plain.build_request("GET", url), client=transport.plain, stream=True
            )
            try:
                with partial.open("wb") as out:
                    for chunk in stream.iter_bytes(CHUNK_SIZE):
                        out.write(chunk)
                break
            except httpx.TransportError as failure:
                # The link stays valid for minutes: a broken transfer starts again from the first byte.
                attempts += 1
                if attempts > transport.max_retries:
                    partial.unlink(missing_ok=True)
                    raise transport_error(failure) from failure
            finally:
                stream.close()
            transport.sleep(backoff_delay(attempts - 1))
        os.replace(partial, target)
        return target

    def list(self, *, status: str | None = None, limit: int = 20) -> Iterator[Dub]:
        """Every dub, newest first, optionally of one `status`; pages of `limit` (1–100) are fetched as
        the iteration reaches them, following `next_cursor`."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if status is not None:
                params["status"] = status
            if cursor is not None:
                params["cursor"] = cursor
            page = self._transport.request("GET", "/v1/dubs", params=params).json()
            data: builtins.list[Any] = page.get("data", [])
            for item in data:
                yield self._bind(item)
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                return


class AsyncDub(DubData):
    """A dub job, bound to the async client that fetched it."""

    _dubs: AsyncDubs | None = PrivateAttr(default=None)

    def _resource(self) -> AsyncDubs:
        if self._dubs is None:
            raise RedubError(
                "this AsyncDub is not bound to a client; use client.dubs.get(id)", code="unbound"
            )
        return self._dubs

    def _update(self, fresh: DubData) -> AsyncDub:
        for name in type(fresh).model_fields:
            setattr(self, name, getattr(fresh, name))
        self.__pydantic_extra__ = fresh.__pydantic_extra__
        return self

    async def refresh(self) -> AsyncDub:
        return self._update(await self._resource().get(self.id))

    async def cancel(self) -> AsyncDub:
        return self._update(await self._resource().cancel(self.id))

    async def wait(
        self, timeout: float | None = DEFAULT_WAIT_S, poll_interval: float = DEFAULT_POLL_S
    ) -> AsyncDub:
        """As `Dub.wait`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise _wait_timeout(self, timeout or 0.0)
            await asyncio.sleep(poll_interval if remaining is None else min(poll_interval, remaining))
            await self.refresh()
        return self

    async def download(self, path: str | os.PathLike[str]) -> Path:
        """As `Dub.download`."""
        if not self.done:
            await self.refresh()
        _refuse_unless_succeeded(self)
        return await self._resource().download(self.id, path)


class AsyncDubs:
    def __init__(self, transport: AsyncTransport, files: AsyncFiles) -> None:
        self._transport = transport
        self._files = files

    def _bind(self, data: Any) -> AsyncDub:
        dub = AsyncDub.model_validate(data)
        dub._dubs = self
        return dub

    async def create(
        self,
        *,
        video: MediaInput,
        audio: MediaInput,
        sync_mode: SyncMode | None = None,
        webhook_url: str | None = None,
        webhook_events: Sequence[str] | None = None,
        speakers: Sequence[Speaker | Mapping[str, Any]] | None = None,
        on_no_face: OnNoFace | None = None,
        model: str | None = None,
        metadata: Mapping[str, MetadataValue] | None = None,
        idempotency_key: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> AsyncDub:
        """As `Dubs.create`."""
        media = {
            **await async_media_reference(self._files, "video", video, progress),
            **await async_media_reference(self._files, "audio", audio, progress),
        }
        body = dub_body(
            media,
            sync_mode=sync_mode,
            webhook_url=webhook_url,
            webhook_events=webhook_events,
            speakers=speakers,
            on_no_face=on_no_face,
            model=model,
            metadata=metadata,
        )
        headers = {"Idempotency-Key": idempotency_key or new_idempotency_key()}
        response = await self._transport.request("POST", "/v1/dubs", json=body, headers=headers)
        return self._bind(response.json())

    async def get(self, dub_id: str | uuid.UUID) -> AsyncDub:
        return self._bind((await self._transport.request("GET", f"/v1/dubs/{dub_id}")).json())

    async def cancel(self, dub_id: str | uuid.UUID) -> AsyncDub:
        return self._bind((await self._transport.request("POST", f"/v1/dubs/{dub_id}/cancel")).json())

    async def download(self, dub_id: str | uuid.UUID, path: str | os.PathLike[str]) -> Path:
        """As `Dubs.download`."""
        import anyio

        transport = self._transport
        response = await transport.request("GET", f"/v1/dubs/{dub_id}/output")
        url = _output_location(transport.url("/"), response)
        target = _target(uuid.UUID(str(dub_id)), path)
        partial = target.with_name(target.name + ".part")
        target.parent.mkdir(parents=True, exist_ok=True)
        attempts = 0
        while True:
            stream = await transport.send(
                lambda: transport.plain.build_request("GET", url), client=transport.plain, stream=True
            )
            try:
                async with await anyio.open_file(partial, "wb") as out:
                    async for chunk in stream.aiter_bytes(CHUNK_SIZE):
                        await out.write(chunk)
                break
            except httpx.TransportError as failure:
                attempts += 1
                if attempts > transport.max_retries:
                    partial.unlink(missing_ok=True)
                    raise transport_error(failure) from failure
            finally:
                await stream.aclose()
            await transport.sleep(backoff_delay(attempts - 1))
        os.replace(partial, target)
        return target

    async def list(self, *, status: str | None = None, limit: int = 20) -> AsyncIterator[AsyncDub]:
        """As `Dubs.list`: `async for dub in client.dubs.list(): …`."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if status is not None:
                params["status"] = status
            if cursor is not None:
                params["cursor"] = cursor
            page = (await self._transport.request("GET", "/v1/dubs", params=params)).json()
            data: builtins.list[Any] = page.get("data", [])
            for item in data:
                yield self._bind(item)
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                return
