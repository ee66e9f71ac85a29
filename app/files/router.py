from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from app.core.config import get_settings
from app.core.errors import COMMON_PROBLEMS, PROBLEM_RESPONSES, ApiError
from app.core.pagination import INVALID_CURSOR_RESPONSE
from app.core.storage import LocalStorage, ObjectNotFound, verify_local_signature
from app.dubs.dependencies import StorageDep
from app.dubs.schemas import Deleted
from app.files import service
from app.files.schemas import FileList, FileOut
from app.keys.dependencies import CurrentKey, SessionDep

router = APIRouter(prefix="/v1/files", tags=["files"], responses=COMMON_PROBLEMS)
storage_router = APIRouter(prefix="/v1/storage", tags=["files"], include_in_schema=False)


_MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=FileOut,
    responses={400: PROBLEM_RESPONSES[400], 413: PROBLEM_RESPONSES[413], 415: PROBLEM_RESPONSES[415]},
    openapi_extra=_MULTIPART_BODY,
)
async def upload_file(request: Request, key: CurrentKey, session: SessionDep, storage: StorageDep) -> FileOut:
    """Upload a video or audio file (multipart field `file`); use its id in `POST /v1/dubs`."""
    # The body is read here, after the key is checked, and only up to the cap (no `UploadFile` parameter:
    # FastAPI would read the whole body before authenticating).
    max_bytes = get_settings().max_upload_bytes
    file = await service.receive_upload(request, max_bytes)
    try:
        return await run_in_threadpool(
            service.upload,
            session,
            key,
            storage,
            stream=file.file,
            filename=Path(file.filename or "upload").name,
            max_bytes=max_bytes,
        )
    finally:
        await file.close()


@router.get("/{file_id}", response_model=FileOut)
def get_file(file_id: uuid.UUID, key: CurrentKey, session: SessionDep) -> FileOut:
    """An uploaded file's facts."""
    return service.get(session, key, file_id)


@storage_router.get("/{object_key:path}")
def download_local(object_key: str, expires: int, signature: str, storage: StorageDep) -> FileResponse:
    """Presigned downloads for the local-directory storage of the embedded mode."""
    if not isinstance(storage, LocalStorage):
        raise ApiError(404, "not_found", "No such object.")
    settings = get_settings()
    if not verify_local_signature(
        settings.storage_signing_secret, object_key, expires, signature, settings.presign_ttl_s
    ):
        raise ApiError(403, "invalid_signature", "The link is not valid or has expired.")
    try:
        path = storage.path_for(object_key)
    except ObjectNotFound as error:
        raise ApiError(404, "not_found", "No such object.") from error
    if not path.is_file():
        raise ApiError(404, "not_found", "No such object.")
    return FileResponse(path, media_type="video/mp4", filename=path.name)


@router.get("", response_model=FileList, responses=INVALID_CURSOR_RESPONSE)
def list_files(
    key: CurrentKey,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> FileList:
    """Your uploads, newest first; pass `next_cursor` back as `cursor` for the next page."""
    return service.list_page(session, key, limit=limit, cursor=cursor)


@router.delete("/{file_id}", response_model=Deleted)
def delete_file(file_id: uuid.UUID, key: CurrentKey, session: SessionDep, storage: StorageDep) -> Deleted:
    """Delete an upload from storage; dubs that used it keep their own copies and outputs."""
    service.delete(session, key, storage, file_id)
    return Deleted(id=file_id, object="file")
