"""AsyncRedub against the real API server and worker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
import redub_client

from tests.conftest import Caller, MediaServer


def test_async_create_wait_download_and_list(
    api_url: str, account: Caller, media_server: MediaServer, tmp_path: Path
) -> None:
    async def scenario() -> tuple[redub_client.AsyncDub, Path, list[redub_client.AsyncDub]]:
        async with redub_client.AsyncRedub(api_key=account.key, base_url=api_url, timeout=30) as client:
            from_url = await client.dubs.create(
                video=media_server.url("video.mp4"), audio=media_server.url("audio.m4a")
            )
            from_path = await client.dubs.create(
                video=media_server.directory / "video.mp4", audio=media_server.directory / "audio.m4a"
            )
            await asyncio.gather(
                from_url.wait(timeout=180, poll_interval=0.2), from_path.wait(timeout=180, poll_interval=0.2)
            )
            written = await from_path.download(tmp_path / "async.mp4")
            listed = [dub async for dub in client.dubs.list(limit=1)]
            assert from_url.status == "succeeded", from_url.error
            return from_path, written, listed

    dub, written, listed = asyncio.run(scenario())
    assert isinstance(dub, redub_client.AsyncDub)
    assert dub.status == "succeeded", dub.error
    assert dub.input.video_file_id is not None
    with av.open(str(written)) as container:
        assert sum(1 for _ in container.decode(video=0)) >= 25
    assert len(listed) == 2 and listed[0].id == dub.id


def test_async_errors_are_typed(api_url: str) -> None:
    async def scenario() -> redub_client.RedubError:
        async with redub_client.AsyncRedub(api_key="rdb_wrong", base_url=api_url) as client:
            try:
                await client.models.list()
            except redub_client.RedubError as error:
                return error
        raise AssertionError("no error")

    error = asyncio.run(scenario())
    assert isinstance(error, redub_client.AuthenticationError) and error.status == 401
