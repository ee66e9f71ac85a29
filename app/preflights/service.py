"""Preflights as the API sees them: a dub request checked and queued for analysis, not rendered nor billed."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from sqlalchemy.orm import Session

from app.core import idempotency
from app.core.config import get_settings
from app.core.errors import ApiError, not_found
from app.core.queue import TASK_PREFLIGHT, PendingTask, enqueue_after_commit
from app.core.storage import ObjectNotFound, ObjectStorage
from app.dubs.schemas import DubCreate
from app.dubs.service import Created, check_inputs
from app.keys.schemas import AuthenticatedKey
from app.models import JobStatus, Preflight
from app.preflights import repository
from app.preflights.schemas import PreflightOut, preflight_out
from app.webhooks import service as webhooks

PATH = "/v1/dubs/preflight"


def create(session: Session, key: AuthenticatedKey, body: DubCreate, idempotency_key: str | None) -> Created:
    if idempotency_key is not None:
        digest = idempotency.request_hash("POST", PATH, body.model_dump(mode="json"))
        stored = idempotency.begin(session, key.account_id, idempotency_key, digest, f"POST {PATH}")
        if stored is not None:
            return Created(stored.status_code, stored.response_body, replayed=True)
    check_inputs(session, key, body)
    # No concurrency slot is taken since nothing is rendered. `webhook_url` gets `preflight.succeeded` or
    # `preflight.failed` (`webhook_events` are the dub's and do not apply).
    endpoint_id = None
    if body.webhook_url is not None:
        webhooks.validate_url(body.webhook_url)
        endpoint_id = webhooks.ensure_endpoint(session, key, body.webhook_url).id
    preflight = Preflight(
        account_id=key.account_id,
        api_key_id=key.id,
        status=JobStatus.QUEUED,
        video_url=body.video_url,
        audio_url=body.audio_url,
        video_file_id=body.video_file_id,
        audio_file_id=body.audio_file_id,
        sync_mode=body.sync_mode,
        speakers=body.speakers_json(),
        on_no_face=body.on_no_face,
        max_duration_s=key.max_duration_s,
        preflight_metadata=dict(body.metadata),
        webhook_url=body.webhook_url,
        webhook_endpoint_id=endpoint_id,
    )
    session.add(preflight)
    session.flush()
    enqueue_after_commit(
        session, PendingTask(TASK_PREFLIGHT, (str(preflight.id),), get_settings().preflight_queue)
    )
    response = preflight_out(preflight).model_dump(mode="json")
    if idempotency_key is not None:
        idempotency.finish(session, key.account_id, idempotency_key, 202, response)
    return Created(202, response, replayed=False)


def get(session: Session, key: AuthenticatedKey, preflight_id: uuid.UUID) -> PreflightOut:
    preflight = repository.get_for_account(session, key.account_id, preflight_id)
    if preflight is None:
        raise not_found("preflight")
    return preflight_out(preflight)


def frame_jpeg(
    session: Session, key: AuthenticatedKey, preflight_id: uuid.UUID, storage: ObjectStorage
) -> bytes:
    """The JPEG of a succeeded preflight's representative frame (`report.frame` describes it)."""
    preflight = repository.get_for_account(session, key.account_id, preflight_id)
    if preflight is None:
        raise not_found("preflight")
    if preflight.status != JobStatus.SUCCEEDED:
        unfinished = preflight.status in (JobStatus.QUEUED, JobStatus.PROCESSING)
        raise ApiError(
            409,
            "preflight_not_ready",
            f"The preflight is {preflight.status}; there is no frame"
            + (" yet. Poll the preflight until it has succeeded." if unfinished else "."),
            retryable=unfinished,
        )
    if preflight.frame_key is None:
        raise ApiError(
            410,
            "frame_expired",
            "The frame is no longer kept: frames are deleted when their retention period ends.",
        )
    # A few hundred kB at most (the frame is at most 1280 px on its long side): read whole.
    with tempfile.TemporaryDirectory(prefix="redub-frame-") as directory:
        path = Path(directory) / "frame.jpg"
        try:
            storage.download_file(preflight.frame_key, path)
        except ObjectNotFound as error:
            raise not_found("frame for this preflight") from error
        return path.read_bytes()
