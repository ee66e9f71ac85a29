"""`client.preflights`: check a dub request without rendering it (faces, speakers, length plan, estimate)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from redub_client._errors import Timeout
from redub_client._media import MediaInput, ProgressCallback
from redub_client._requests import dub_body, new_idempotency_key
from redub_client.files import AsyncFiles, Files, async_media_reference, media_reference
from redub_client.types import OnNoFace, PreflightData, Speaker, SyncMode

if TYPE_CHECKING:
    from redub_client._transport import AsyncTransport, SyncTransport


def _timeout(preflight: PreflightData, timeout: float) -> Timeout:
    return Timeout(
        f"preflight {preflight.id} is still {preflight.status} after {timeout:g} s",
        code="wait_timeout",
        retryable=True,
    )


class Preflights:
    def __init__(self, transport: SyncTransport, files: Files) -> None:
        self._transport = transport
        self._files = files

    def create(
        self,
        *,
        video: MediaInput,
        audio: MediaInput,
        sync_mode: SyncMode | None = None,
        speakers: Sequence[Speaker | Mapping[str, Any]] | None = None,
        on_no_face: OnNoFace | None = None,
        model: str | None = None,
        idempotency_key: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> PreflightData:
        """Starts a preflight of the dub these arguments describe (inputs as for `dubs.create`)."""
        media = {
            **media_reference(self._files, "video", video, progress),
            **media_reference(self._files, "audio", audio, progress),
        }
        body = dub_body(
            media,
            sync_mode=sync_mode,
            webhook_url=None,
            webhook_events=None,
            speakers=speakers,
            on_no_face=on_no_face,
            model=model,
            metadata=None,
        )
        headers = {"Idempotency-Key": idempotency_key or new_idempotency_key()}
        response = self._transport.request("POST", "/v1/dubs/preflight", json=body, headers=headers)
        return PreflightData.model_validate(response.json())

    def get(self, preflight_id: str | uuid.UUID) -> PreflightData:
        response = self._transport.request("GET", f"/v1/dubs/preflight/{preflight_id}")
        return PreflightData.model_validate(response.json())

    def wait(
        self, preflight_id: str | uuid.UUID, timeout: float | None = 600.0, poll_interval: float = 1.0
    ) -> PreflightData:
        """Polls until the preflight succeeds or fails; raises `redub_client.Timeout` after `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        preflight = self.get(preflight_id)
        while not preflight.done:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise _timeout(preflight, timeout or 0.0)
            time.sleep(poll_interval if remaining is None else min(poll_interval, remaining))
            preflight = self.get(preflight_id)
        return preflight


class AsyncPreflights:
    def __init__(self, transport: AsyncTransport, files: AsyncFiles) -> None:
        self._transport = transport
        self._files = files

    async def create(
        self,
        *,
        video: MediaInput,
        audio: MediaInput,
        sync_mode: SyncMode | None = None,
        speakers: Sequence[Speaker | Mapping[str, Any]] | None = None,
        on_no_face: OnNoFace | None = None,
        model: str | None = None,
        idempotency_key: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> PreflightData:
        """As `Preflights.create`."""
        media = {
            **await async_media_reference(self._files, "video", video, progress),
            **await async_media_reference(self._files, "audio", audio, progress),
        }
        body = dub_body(
            media,
            sync_mode=sync_mode,
            webhook_url=None,
            webhook_events=None,
            speakers=speakers,
            on_no_face=on_no_face,
            model=model,
            metadata=None,
        )
        headers = {"Idempotency-Key": idempotency_key or new_idempotency_key()}
        response = await self._transport.request("POST", "/v1/dubs/preflight", json=body, headers=headers)
        return PreflightData.model_validate(response.json())

    async def get(self, preflight_id: str | uuid.UUID) -> PreflightData:
        response = await self._transport.request("GET", f"/v1/dubs/preflight/{preflight_id}")
        return PreflightData.model_validate(response.json())

    async def wait(
        self, preflight_id: str | uuid.UUID, timeout: float | None = 600.0, poll_interval: float = 1.0
    ) -> PreflightData:
        """As `Preflights.wait`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        preflight = await self.get(preflight_id)
        while not preflight.done:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise _timeout(preflight, timeout or 0.0)
            await asyncio.sleep(poll_interval if remaining is None else min(poll_interval, remaining))
            preflight = await self.get(preflight_id)
        return preflight
