from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from app.core.errors import COMMON_PROBLEMS, PROBLEM_RESPONSES
from app.core.idempotency import REPLAYED_HEADER
from app.dubs.schemas import DubCreate
from app.keys.dependencies import CurrentKey, SessionDep
from app.preflights import service
from app.preflights.schemas import PreflightOut

router = APIRouter(prefix="/v1/dubs/preflight", tags=["dubs"], responses=COMMON_PROBLEMS)


@router.post(
    "",
    status_code=202,
    response_model=PreflightOut,
    responses={409: PROBLEM_RESPONSES[409], 429: PROBLEM_RESPONSES[429]},
)
def create_preflight(
    body: DubCreate,
    key: CurrentKey,
    session: SessionDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
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
