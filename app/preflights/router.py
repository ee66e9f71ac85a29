from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from app.core.errors import COMMON_PROBLEMS, PROBLEM_RESPONSES
from app.core.idempotency import INVALID_KEY_RESPONSE, REPLAYED_HEADER, IdempotencyKeyHeader
from app.dubs.dependencies import StorageDep
from app.dubs.schemas import DubCreate
from app.keys.dependencies import CurrentKey, SessionDep
from app.preflights import service
from app.preflights.schemas import PreflightOut

router = APIRouter(prefix="/v1/dubs/preflight", tags=["dubs"], responses=COMMON_PROBLEMS)


@router.post(
    "",
    status_code=202,
    response_model=PreflightOut,
    responses={**INVALID_KEY_RESPONSE, 409: PROBLEM_RESPONSES[409], 429: PROBLEM_RESPONSES[429]},
)
def create_preflight(
    body: DubCreate,
    key: CurrentKey,
    session: SessionDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Check a dub request without rendering or billing it: faces, speakers, length plan, render estimate."""
    created = service.create(session, key, body, idempotency_key)
    headers = {"Location": f"{service.PATH}/{created.body['id']}"}
    if idempotency_key is not None:
        headers[REPLAYED_HEADER] = "true" if created.replayed else "false"
    return JSONResponse(created.body, status_code=created.status_code, headers=headers)


@router.get("/{preflight_id}", response_model=PreflightOut)
def get_preflight(preflight_id: uuid.UUID, key: CurrentKey, session: SessionDep) -> PreflightOut:
    """One preflight: its status and, once succeeded, its report."""
    return service.get(session, key, preflight_id)


@router.get(
    "/{preflight_id}/frame",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The frame, upright, at most 1280 px wide."},
        409: PROBLEM_RESPONSES[409],
        410: PROBLEM_RESPONSES[410],
    },
)
def get_preflight_frame(
    preflight_id: uuid.UUID, key: CurrentKey, session: SessionDep, storage: StorageDep
) -> Response:
    """A succeeded preflight's representative frame as a JPEG; `report.frame` gives its faces' boxes."""
    image = service.frame_jpeg(session, key, preflight_id, storage)
    return Response(image, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})
