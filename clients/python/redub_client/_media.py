"""What a dub's `video` / `audio` may be (an http(s) URL, a local path, a binary file object) and the
streamed multipart body that uploads a file to `POST /v1/files` without holding it in memory."""

from __future__ import annotations

import mimetypes
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from redub_client._errors import InvalidRequestError

MediaInput = str | os.PathLike[str] | IO[bytes]
# Called after every chunk sent: (bytes sent so far, total bytes or None when the size is unknown).
ProgressCallback = Callable[[int, int | None], None]
CHUNK_SIZE = 1 << 20


def url_of(value: MediaInput) -> str | None:
    """The value itself when it is an http(s) URL; None for anything to upload."""
    if not isinstance(value, str) or "://" not in value:
        return None
    scheme = urlparse(value).scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidRequestError(
            f"only http(s) URLs can be fetched by the service, not {scheme}://; pass a local path to upload",
            code="unsupported_url",
            param=None,
        )
    return value


@dataclass
class UploadSource:
    """A local file or an open binary stream, readable again from its start on each retry when it can be."""

    path: Path | None
    stream: IO[bytes] | None
    filename: str
    content_type: str
    start: int | None  # the stream's position when given, to rewind to on a retry; None if not seekable

    @classmethod
    def of(cls, value: MediaInput, param: str = "file") -> UploadSource:
        if isinstance(value, str | os.PathLike):
            path = Path(os.fspath(value))
            if not path.is_file():
                raise InvalidRequestError(
                    f"{param}: no such file: {path}", code="input_not_found", param=param
                )
            return cls(path, None, path.name, _guess_type(path.name), None)
        if not hasattr(value, "read"):
            raise InvalidRequestError(
                f"{param}: expected a URL, a path or a binary file object, not {type(value).__name__}",
                code="invalid_input",
                param=param,
            )
        name = Path(str(getattr(value, "name", "") or "upload")).name
        start: int | None = None
        try:
            if value.seekable():
                start = value.tell()
        except (AttributeError, OSError, ValueError):
            start = None
        return cls(None, value, name, _guess_type(name), start)

    @property
    def replayable(self) -> bool:
        return self.path is not None or self.start is not None

    def open(self) -> IO[bytes]:
        """A stream positioned at the start of the data (a new one for a path)."""
        if self.path is not None:
            return self.path.open("rb")
        assert self.stream is not None
        if self.start is not None:
            self.stream.seek(self.start)
        return self.stream

    def size(self, stream: IO[bytes]) -> int | None:
        if self.path is not None:
            return self.path.stat().st_size
        if self.start is None:
            return None
        try:
            end = stream.seek(0, os.SEEK_END)
            return end - self.start
        finally:
            stream.seek(self.start)


def _guess_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class MultipartBody:
    """`multipart/form-data` with one `file` field, produced chunk by chunk (sync or async iteration);
    its Content-Length is exact whenever the file's size is known."""

    def __init__(self, source: UploadSource, progress: ProgressCallback | None) -> None:
        self.source = source
        self.progress = progress
        boundary = secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={boundary}"
        # As browsers encode form filenames: quotes and line breaks percent-encoded.
        filename = source.filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        self.head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: {source.content_type}\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{boundary}--\r\n".encode()
        self.stream = source.open()
        self.total = source.size(self.stream)

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.content_type}
        if self.total is not None:
            headers["Content-Length"] = str(len(self.head) + self.total + len(self.tail))
        return headers

    def _chunks(self) -> Iterator[bytes]:
        yield self.head
        sent = 0
        if self.progress is not None:
            self.progress(0, self.total)
        while chunk := self.stream.read(CHUNK_SIZE):
            sent += len(chunk)
            yield chunk
            if self.progress is not None:
                self.progress(sent, self.total)
        yield self.tail

    def sync_stream(self) -> Iterator[bytes]:
        return self._chunks()

    async def async_stream(self) -> AsyncIterator[bytes]:
        # Reads of a local file are short; one thread hop per 1 MiB chunk keeps the event loop free.
        import anyio.to_thread

        chunks = self._chunks()
        while True:
            chunk: Any = await anyio.to_thread.run_sync(next, chunks, None)
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        if self.source.path is not None:
            self.stream.close()
