"""Dub jobs as the API sees them: admission (limits, idempotency), reads, pagination, cancellation."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.catalog import service as catalog
from app.core import async_reads, idempotency
from app.core.config import get_settings
from app.core.db import new_session, read_connection
from app.core.errors import ApiError, not_found
from app.core.fetch import FetchError
from app.core.logging import bind_log_fields
from app.core.pagination import decode_cursor, encode_cursor
from app.core.queue import TASK_PROCESS_DUB, PendingTask, dub_queue, enqueue_after_commit
from app.core.storage import ObjectStorage, input_key, output_key
from app.core.urls import vet_customer_url
from app.dubs import eta as eta_estimates
from app.dubs import poll_cache, repository
from app.dubs.schemas import DEFAULT_EVENTS, DubCreate, DubEta, DubList, DubOut, dub_out
from app.keys.schemas import AuthenticatedKey
from app.models import ApiKey, Job, JobStatus, MediaFile
from app.models.base import utcnow
from app.models.job import TERMINAL_STATUSES
from app.webhooks import service as webhooks


@dataclass(frozen=True)
class Created:
    status_code: int
    body: dict[str, Any]
    replayed: bool


def _check_input_url(field: str, url: str) -> None:
    try:
        vet_customer_url(url)
    except FetchError as error:
        raise ApiError(422, error.code, f"{field}: {error.message}", extra={"param": field}) from error


def _check_file(session: Session, key: AuthenticatedKey, field: str, file_id: uuid.UUID) -> None:
    media = session.get(MediaFile, file_id)
    if media is None or media.account_id != key.account_id or media.deleted_at is not None:
        raise ApiError(422, "file_not_found", f"{field}: no such file.", extra={"param": field})


def check_inputs(session: Session, key: AuthenticatedKey, body: DubCreate) -> None:
    """URLs the worker may fetch and uploads this account owns; a 422 problem otherwise."""
    if body.video_url is not None:
        _check_input_url("video_url", body.video_url)
    if body.audio_url is not None:
        _check_input_url("audio_url", body.audio_url)
    if body.video_file_id is not None:
        _check_file(session, key, "video_file_id", body.video_file_id)
    if body.audio_file_id is not None:
        _check_file(session, key, "audio_file_id", body.audio_file_id)


def create(
    session: Session,
    key: AuthenticatedKey,
    body: DubCreate,
    storage: ObjectStorage,
    idempotency_key: str | None,
) -> Created:
    if idempotency_key is not None:
        digest = idempotency.request_hash("POST", "/v1/dubs", body.model_dump(mode="json"))
        stored = idempotency.begin(session, key.account_id, idempotency_key, digest, "POST /v1/dubs")
        if stored is not None:
            return Created(stored.status_code, stored.response_body, replayed=True)

    check_inputs(session, key, body)

    if key.max_concurrent_jobs > 0:
        # Lock the key's row so two simultaneous requests cannot both take the last slot.
        session.execute(select(ApiKey.id).where(ApiKey.id == key.id).with_for_update())
        active = repository.count_active_for_key(session, key.id)
        if active >= key.max_concurrent_jobs:
            raise ApiError(
                429,
                "concurrency_limited",
                f"This key already has {active} unfinished dubs (limit {key.max_concurrent_jobs}).",
                retryable=True,
                headers={
                    "Retry-After": "30",
                    "X-Concurrency-Limit": str(key.max_concurrent_jobs),
                    "X-Concurrency-In-Use": str(active),
                },
            )

    endpoint_id = None
    if body.webhook_url is not None:
        webhooks.validate_url(body.webhook_url)
        endpoint_id = webhooks.ensure_endpoint(session, key, body.webhook_url).id

    job = Job(
        account_id=key.account_id,
        api_key_id=key.id,
        status=JobStatus.QUEUED,
        video_url=body.video_url,
        audio_url=body.audio_url,
        video_file_id=body.video_file_id,
        audio_file_id=body.audio_file_id,
        sync_mode=body.sync_mode,
        job_metadata=dict(body.metadata),
        webhook_endpoint_id=endpoint_id,
        webhook_url=body.webhook_url,
        webhook_events=list(DEFAULT_EVENTS if body.webhook_events is None else body.webhook_events),
        max_duration_s=key.max_duration_s,
        speakers=body.speakers_json(),
        on_no_face=body.on_no_face,
        model=catalog.resolve(body.model),
        progress_stage="queued",
    )
    session.add(job)
    session.flush()
    bind_log_fields(job_id=str(job.id))
    repository.add_event(session, job.id, "created")
    enqueue_after_commit(session, PendingTask(TASK_PROCESS_DUB, (str(job.id),), dub_queue(get_settings())))
    response = dub_out(job, storage).model_dump(mode="json")
    if idempotency_key is not None:
        idempotency.finish(session, key.account_id, idempotency_key, 202, response)
    return Created(202, response, replayed=False)


def get(session: Session, key: AuthenticatedKey, job_id: uuid.UUID) -> Job:
    job = repository.get_for_account(session, key.account_id, job_id)
    if job is None:
        raise not_found("dub")
    return job


async def poll_async(key: AuthenticatedKey, job_id: uuid.UUID, storage: ObjectStorage) -> bytes:
    """The status poll on the event loop where the database allows it (PostgreSQL)."""
    if not async_reads.available():
        return await run_in_threadpool(poll, key, job_id, storage)
    cache = poll_cache.for_this_loop()
    if cache is None:
        row = await repository.read_for_account_async(key.account_id, job_id)
    else:
        row = await cache.get(job_id, lambda: repository.read_for_account_async(None, job_id))
    # Tenancy is checked on the row itself, so a cached row is never shown to another account.
    if row is None or row["account_id"] != key.account_id:
        raise not_found("dub")
    position = eta = None
    if row["status"] == JobStatus.QUEUED:
        # Only while queued: the one extra query stays off the hot path of running and ended jobs.
        position = 1 + await repository.queued_ahead_async(row["created_at"])
    if row["status"] in (JobStatus.QUEUED, JobStatus.PROCESSING):
        history = await run_in_threadpool(eta_estimates.recent_history)  # cached: rarely a query
        eta = _eta(row["status"], position, row["started_at"], row["media"], history)
    job = SimpleNamespace(**row)
    return dub_out(job, storage, queue_position=position, eta=eta).model_dump_json().encode()


def poll(key: AuthenticatedKey, job_id: uuid.UUID, storage: ObjectStorage) -> bytes:
    """`GET /v1/dubs/{id}` as JSON bytes, read in one autocommit round trip."""
    with read_connection() as connection:
        row = repository.read_for_account(connection, key.account_id, job_id)
        if row is None:
            raise not_found("dub")
        position = None
        if row.status == JobStatus.QUEUED:
            position = 1 + repository.queued_ahead(connection, row.created_at)
    eta = None
    if row.status in (JobStatus.QUEUED, JobStatus.PROCESSING):
        eta = _eta(row.status, position, row.started_at, row.media, eta_estimates.recent_history())
    return dub_out(row, storage, queue_position=position, eta=eta).model_dump_json().encode()


def _eta(
    status: str,
    position: int | None,
    started_at: datetime | None,
    media: dict[str, Any] | None,
    history: eta_estimates.History,
) -> DubEta | None:
    found = eta_estimates.estimate(
        status, position=position, started_at=started_at, media=media, history=history, now=utcnow()
    )
    if found is None:
        return None
    return DubEta(
        seconds_left=found.seconds_left, completes_at=found.completes_at, based_on_dubs=found.based_on_dubs
    )


def list_page(
    session: Session,
    key: AuthenticatedKey,
    storage: ObjectStorage,
    *,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> DubList:
    after = decode_cursor(cursor) if cursor else None
    jobs = repository.list_for_account(session, key.account_id, status=status, limit=limit + 1, after=after)
    has_more = len(jobs) > limit
    jobs = jobs[:limit]
    return DubList(
        data=[dub_out(job, storage) for job in jobs],
        next_cursor=encode_cursor(jobs[-1].created_at, jobs[-1].id) if has_more and jobs else None,
        has_more=has_more,
    )


def cancel_and_commit(key: AuthenticatedKey, job_id: uuid.UUID, storage: ObjectStorage) -> DubOut:
    with new_session() as session:
        result = cancel(session, key, job_id, storage)
        session.commit()
        return result


def cancel(session: Session, key: AuthenticatedKey, job_id: uuid.UUID, storage: ObjectStorage) -> DubOut:
    """Queued work is canceled at once; running work is flagged and stops at the next segment."""
    job = get(session, key, job_id)
    if repository.cancel_queued(session, job.id):
        repository.add_event(session, job.id, "canceled", {"by": "api"})
        session.refresh(job)
        webhooks.emit(session, job, "dub.canceled")
    elif repository.request_cancel(session, job.id):
        repository.add_event(session, job.id, "cancel_requested", {"by": "api"})
        session.refresh(job)
    else:
        session.refresh(job)
        if job.status not in (JobStatus.CANCELED, JobStatus.PROCESSING):
            raise ApiError(409, "not_cancelable", f"The dub has already {job.status}.")
    return dub_out(job, storage)


MAX_WAIT_S = 60.0
_WAIT_PREFERENCE = re.compile(r"(?:^|[;,\s])wait\s*=\s*(\d+(?:\.\d+)?)")
_WAIT_POLL_S = 0.25


def preferred_wait_s(prefer: str | None) -> float | None:
    """`Prefer: wait=N` (RFC 7240) as seconds, at most 60; None when not asked."""
    match = _WAIT_PREFERENCE.search(prefer or "")
    if match is None:
        return None
    return min(float(match.group(1)), MAX_WAIT_S)


def wait_until_done(
    key: AuthenticatedKey, job_id: uuid.UUID, storage: ObjectStorage, wait_s: float
) -> dict[str, Any] | None:
    """The job once it has ended, or as it stands after `wait_s`; one autocommit read per poll."""
    deadline = time.monotonic() + wait_s
    body: dict[str, Any] | None = None
    while True:
        with read_connection() as connection:
            row = repository.read_for_account(connection, key.account_id, job_id)
        if row is None:
            return body
        body = dub_out(row, storage).model_dump(mode="json")
        if body["status"] in TERMINAL_STATUSES or time.monotonic() >= deadline:
            return body
        time.sleep(min(_WAIT_POLL_S, max(deadline - time.monotonic(), 0.0)))


def delete_and_commit(key: AuthenticatedKey, job_id: uuid.UUID, storage: ObjectStorage) -> None:
    with new_session() as session:
        delete(session, key, job_id, storage)
        session.commit()


def delete(session: Session, key: AuthenticatedKey, job_id: uuid.UUID, storage: ObjectStorage) -> None:
    """Remove an ended dub: its output and stored inputs from object storage, then its row (events and
    webhook deliveries go with it). A queued or running dub is canceled first, by the caller."""
    job = get(session, key, job_id)
    if job.status not in TERMINAL_STATUSES:
        raise ApiError(
            409,
            "dub_not_finished",
            f"The dub is {job.status}; cancel it (POST /v1/dubs/{job.id}/cancel) before deleting it.",
            retryable=True,
        )
    for object_key in (output_key(job.id), input_key(job.id, "video"), input_key(job.id, "audio")):
        storage.delete(object_key)
    repository.delete(session, job.id)
