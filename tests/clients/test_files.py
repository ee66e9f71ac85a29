"""Uploads through the client: streamed in chunks with progress, from a path or a file object."""

from __future__ import annotations

import io

import pytest
import redub_client

from tests.conftest import MediaServer


def test_a_multi_chunk_upload_reports_progress_up_to_its_size(
    redub: redub_client.Redub, media_server: MediaServer
) -> None:
    # A real MP4 followed by 3.5 MiB of padding: the service sniffs the head, the client sends 4+ chunks.
    data = (media_server.directory / "video.mp4").read_bytes() + b"\x00" * (7 << 19)
    stream = io.BytesIO(b"ignored prefix" + data)
    stream.seek(len(b"ignored prefix"))  # uploads from the stream's position
    progress: list[tuple[int, int | None]] = []

    uploaded = redub.files.upload(stream, progress=lambda sent, total: progress.append((sent, total)))

    assert uploaded.size_bytes == len(data)
    assert uploaded.filename == "upload"
    sent = [item[0] for item in progress]
    assert sent == sorted(sent) and len(sent) >= 5
    assert progress[-1] == (len(data), len(data)) and {total for _, total in progress} == {len(data)}
    assert redub.files.get(uploaded.id).id == uploaded.id


def test_text_is_refused_as_not_media(redub: redub_client.Redub) -> None:
    with pytest.raises(redub_client.InvalidRequestError) as caught:
        redub.files.upload(io.BytesIO(b"hello, not a video" * 100))
    assert caught.value.status == 422 and caught.value.code == "not_media"
