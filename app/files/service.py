"""Uploads: streamed from the request to object storage in chunks, checked for size and media signature."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncGenerator
from typing import BinaryIO

from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from app.core.errors import ApiError, not_found
from app.core.fetch import looks_like_media, media_type_of
from app.core.pagination import decode_cursor, encode_cursor
from app.core.storage import ObjectStorage, file_key
from app.dubs.schemas import retained_until
from app.files import repository
from app.files.schemas import FileList, FileOut
from app.keys.schemas import AuthenticatedKey
from app.models import MediaFile
from app.models.base import utcnow

_SNIFF_BYTES = 4096


class _CappedReader(io.RawIOBase):
    """Reads through to `source` and refuses to go past `max_bytes`."""

    def __init__(self, head: bytes, source: BinaryIO, max_bytes: int) -> None:
        self.head = head
        self.source = source
        self.max_bytes = max_bytes
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.head:
            data, self.head = self.head[: len(buffer)], self.head[len(buffer) :]
        else:
            data = self.source.read(len(buffer))
        self.size += len(data)
        if self.size > self.max_bytes:
            raise _too_large(self.max_bytes)
        buffer[: len(data)] = data
        return len(data)


# Room for the multipart boundaries and part headers around the file itself.
_MULTIPART_OVERHEAD = 64 * 1024


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "file_too_large", f"Uploads are limited to {max_bytes} bytes.")


async def _capped_stream(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The request body, refused as soon as it passes `limit` (a body of undeclared length included)."""
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(limit - _MULTIPART_OVERHEAD)
        yield chunk


async def receive_upload(request: Request, max_bytes: int) -> UploadFile:
    """The multipart `file` of an upload; a declared size over the cap is refused before any byte is read."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type", "Upload the file as multipart/form-data, field `file`.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + _MULTIPART_OVERHEAD:
        raise _too_large(max_bytes)
    parser = MultiPartParser(
        request.headers,
        _capped_stream(request, max_bytes + _MULTIPART_OVERHEAD),
        max_files=1,
        max_fields=10,
    )
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise ApiError(
            400, "invalid_multipart", f"The multipart body is malformed: {error.message}"
        ) from error
    file = form.get("file")
    if not isinstance(file, UploadFile):
        await form.close()
        raise ApiError(
            422, "validation_error", "The multipart field `file` is missing.", extra={"param": "file"}
        )
    return file


def _out(media: MediaFile) -> FileOut:
    return FileOut(
        id=media.id,
        filename=media.filename,
        content_type=media.content_type,
        size_bytes=media.size,
        created_at=media.created_at,
        expires_at=retained_until(media.created_at),
    )


def upload(
    session: Session,
    key: AuthenticatedKey,
    storage: ObjectStorage,
    *,
    stream: BinaryIO,
    filename: str,
    max_bytes: int,
) -> FileOut:
    head = stream.read(_SNIFF_BYTES)
    if not looks_like_media(head):
        raise ApiError(422, "not_media", "The upload is not a video or audio file.")
    # From the bytes, not the client's multipart header (browsers send text/plain or octet-stream freely).
    content_type = media_type_of(head)
    media_id = uuid.uuid4()
    object_key = file_key(key.account_id, media_id)
    reader = _CappedReader(head, stream, max_bytes)
    storage.upload_stream(object_key, io.BufferedReader(reader, 1024 * 1024), content_type)
    media = MediaFile(
        id=media_id,
        account_id=key.account_id,
        object_key=object_key,
        filename=filename[:300],
        content_type=content_type[:200],
        size=reader.size,
    )
    session.add(media)
    session.flush()
    return _out(media)


def get(session: Session, key: AuthenticatedKey, file_id: uuid.UUID) -> FileOut:
    media = repository.get_for_account(session, key.account_id, file_id)
    if media is None:
        raise not_found("file")
    return _out(media)


def list_page(session: Session, key: AuthenticatedKey, *, limit: int, cursor: str | None) -> FileList:
    after = decode_cursor(cursor) if cursor else None
    files = repository.list_for_account(session, key.account_id, limit=limit + 1, after=after)
    has_more = len(files) > limit
    files = files[:limit]
    last = files[-1] if has_more and files else None
    return FileList(
        data=[_out(media) for media in files],
        next_cursor=encode_cursor(last.created_at, last.id) if last is not None else None,
        has_more=has_more,
    )


def delete(session: Session, key: AuthenticatedKey, storage: ObjectStorage, file_id: uuid.UUID) -> None:
    """Remove the stored object; the row is kept (marked deleted) for the dubs that name it."""
    media = repository.get_for_account(session, key.account_id, file_id)
    if media is None:
        raise not_found("file")
    storage.delete(media.object_key)
    media.deleted_at = utcnow()
    session.flush()
