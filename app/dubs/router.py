from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse

from app.core.config import get_settings
from app.core.errors import COMMON_PROBLEMS, PROBLEM_RESPONSES, ApiError
from app.core.idempotency import INVALID_KEY_RESPONSE, REPLAYED_HEADER, IdempotencyKeyHeader
from app.core.pagination import INVALID_CURSOR_RESPONSE
from app.core.storage import get_storage
from app.dubs import poll_cache, service
from app.dubs.dependencies import StorageDep, name_the_dub_in_logs
from app.dubs.schemas import Deleted, DubCreate, DubList, DubOut
from app.keys.dependencies import CurrentKey, SessionDep

router = APIRouter(
    prefix="/v1/dubs",
    tags=["dubs"],
    responses=COMMON_PROBLEMS,
    dependencies=[Depends(name_the_dub_in_logs)],
)

StatusFilter = Literal["queued", "processing", "succeeded", "failed", "canceled"]


@router.post(
    "",
    status_code=202,
    response_model=DubOut,
    responses={
        200: {"description": "With `Prefer: wait=N`: the dub ended within N seconds.", "model": DubOut},
        **INVALID_KEY_RESPONSE,
        409: PROBLEM_RESPONSES[409],
        429: PROBLEM_RESPONSES[429],
    },
)
def create_dub(
    body: DubCreate,
    key: CurrentKey,
    session: SessionDep,
    storage: StorageDep,
    idempotency_key: IdempotencyKeyHeader = None,
    prefer: Annotated[
        str | None,
        Header(
            alias="Prefer",
            description="`wait=N` (N ≤ 60): hold the answer until the dub ends or N seconds pass; a dub "
            "that ended is answered `200`, one still running `202`.",
        ),
    ] = None,
) -> JSONResponse:
    """Start a dub; answers at once with the queued job (or, with `Prefer: wait=N`, once it ends)."""
    created = service.create(session, key, body, storage, idempotency_key)
    headers = {"Location": f"/v1/dubs/{created.body['id']}"}
    if idempotency_key is not None:
        headers[REPLAYED_HEADER] = "true" if created.replayed else "false"
    wait_s = service.preferred_wait_s(prefer)
    if wait_s is None:
        return JSONResponse(created.body, status_code=created.status_code, headers=headers)
    # The job must be committed (and its task sent) before there is anything to wait for.
    session.commit()
    finished = service.wait_until_done(key, uuid.UUID(created.body["id"]), storage, wait_s)
    headers["Preference-Applied"] = f"wait={wait_s:g}"
    done = finished is not None and finished["status"] in ("succeeded", "failed", "canceled")
    return JSONResponse(finished or created.body, status_code=200 if done else 202, headers=headers)


@router.get("", response_model=DubList, responses=INVALID_CURSOR_RESPONSE)
def list_dubs(
    key: CurrentKey,
    session: SessionDep,
    storage: StorageDep,
    status: StatusFilter | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> DubList:
    """Your dubs, newest first; pass `next_cursor` back as `cursor` for the next page."""
    return service.list_page(session, key, storage, status=status, limit=limit, cursor=cursor)


@router.get("/{dub_id}", response_model=DubOut)
async def get_dub(dub_id: uuid.UUID, key: CurrentKey) -> Response:
    """One dub: status, progress, and the output or the error."""
    # The hot path of every integration (polling): one autocommit SELECT, no thread hop, no re-validation,
    # and as few dependencies to resolve as possible.
    body = await service.poll_async(key, dub_id, get_storage())
    return Response(body, media_type="application/json")


@router.post("/{dub_id}/cancel", response_model=DubOut, responses={409: PROBLEM_RESPONSES[409]})
async def cancel_dub(dub_id: uuid.UUID, key: CurrentKey, storage: StorageDep) -> DubOut:
    """Cancel a queued or running dub; a running one stops at the next segment."""
    canceled = await run_in_threadpool(service.cancel_and_commit, key, dub_id, storage)
    # Read-your-writes: a poll right after this answer must not see the job as it was.
    poll_cache.changed_here(dub_id)
    return canceled


@router.get("/{dub_id}/output", status_code=307, response_class=RedirectResponse)
def get_output(
    dub_id: uuid.UUID, key: CurrentKey, session: SessionDep, storage: StorageDep
) -> RedirectResponse:
    """Redirect to a freshly signed download URL of the dubbed video."""
    job = service.get(session, key, dub_id)
    if job.status == "succeeded" and not job.output_key:
        raise ApiError(410, "output_expired", "The output was deleted when its retention period ended.")
    if job.status != "succeeded" or not job.output_key:
        # Unfinished work will have an output: asking again later helps; a failed or canceled dub never will.
        unfinished = job.status in ("queued", "processing")
        raise ApiError(
            409,
            "output_not_ready",
            f"The dub is {job.status}; there is no output"
            + (" yet. Poll the dub until it has succeeded." if unfinished else "."),
            retryable=unfinished,
        )
    url = storage.presigned_url(job.output_key, get_settings().presign_ttl_s, filename=f"dub-{job.id}.mp4")
    return RedirectResponse(url, status_code=307)


@router.delete("/{dub_id}", response_model=Deleted, responses={409: PROBLEM_RESPONSES[409]})
async def delete_dub(dub_id: uuid.UUID, key: CurrentKey, storage: StorageDep) -> Deleted:
    """Delete an ended dub with its output and stored inputs; cancel a running one first."""
    await run_in_threadpool(service.delete_and_commit, key, dub_id, storage)
    poll_cache.changed_here(dub_id)
    return Deleted(id=dub_id, object="dub")
