"""`client.files`: upload a local file or a binary stream (`POST /v1/files`), read a file's facts."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import httpx

from redub_client._media import MediaInput, MultipartBody, ProgressCallback, UploadSource, url_of
from redub_client.types import File

if TYPE_CHECKING:
    from redub_client._transport import AsyncTransport, SyncTransport


class Files:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def upload(
        self, file: MediaInput, *, progress: ProgressCallback | None = None, param: str = "file"
    ) -> File:
        """Uploads a path or binary file object, streamed; `progress(bytes_sent, total)` follows it.
        Retried from the start on a connection error or 5xx when the data can be read again."""
        source = UploadSource.of(file, param)
        bodies: list[MultipartBody] = []

        def make() -> httpx.Request:
            body = MultipartBody(source, progress)
            bodies.append(body)
            return self._transport.http.build_request(
                "POST", self._transport.url("/v1/files"), content=body.sync_stream(), headers=body.headers()
            )

        try:
            response = self._transport.send(make, replayable=source.replayable)
        finally:
            for body in bodies:
                body.close()
        return File.model_validate(response.json())

    def get(self, file_id: str | uuid.UUID) -> File:
        return File.model_validate(self._transport.request("GET", f"/v1/files/{file_id}").json())


class AsyncFiles:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def upload(
        self, file: MediaInput, *, progress: ProgressCallback | None = None, param: str = "file"
    ) -> File:
        """As `Files.upload`."""
        source = UploadSource.of(file, param)
        bodies: list[MultipartBody] = []

        def make() -> httpx.Request:
            body = MultipartBody(source, progress)
            bodies.append(body)
            return self._transport.http.build_request(
                "POST", self._transport.url("/v1/files"), content=body.async_stream(), headers=body.headers()
            )

        try:
            response = await self._transport.send(make, replayable=source.replayable)
        finally:
            for body in bodies:
                body.close()
        return File.model_validate(response.json())

    async def get(self, file_id: str | uuid.UUID) -> File:
        response = await self._transport.request("GET", f"/v1/files/{file_id}")
        return File.model_validate(response.json())


def _as_reference(kind: str, url: str | None, file: File | None) -> dict[str, str]:
    if url is not None:
        return {f"{kind}_url": url}
    assert file is not None
    return {f"{kind}_file_id": str(file.id)}


def media_reference(
    files: Files, kind: str, value: MediaInput, progress: ProgressCallback | None
) -> dict[str, str]:
    """`{"video_url": …}` for a URL, else uploads the file and gives `{"video_file_id": …}`."""
    url = url_of(value)
    return _as_reference(
        kind, url, None if url is not None else files.upload(value, progress=progress, param=kind)
    )


async def async_media_reference(
    files: AsyncFiles, kind: str, value: MediaInput, progress: ProgressCallback | None
) -> dict[str, str]:
    url = url_of(value)
    uploaded = None if url is not None else await files.upload(value, progress=progress, param=kind)
    return _as_reference(kind, url, uploaded)
