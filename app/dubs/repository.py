"""SQL for jobs. Every state change is a conditional UPDATE, so a redelivered task or a race is harmless."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, CursorResult, Row, Uuid, and_, bindparam, func, or_, select, update
from sqlalchemy import delete as sa_delete
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from app.core import async_reads
from app.models import Job, JobEvent, JobSegment, JobStatus
from app.models.base import utcnow
from app.models.job import ACTIVE_STATUSES


def get_for_account(session: Session, account_id: uuid.UUID, job_id: uuid.UUID) -> Job | None:
    return session.scalars(select(Job).where(Job.id == job_id, Job.account_id == account_id)).first()


# Every column the public view needs, under its ORM attribute name, so a Core row reads like a `Job`
# without building one. The engine's report (can be large) is not part of a poll.
_JOB_COLUMNS = [
    attribute.columns[0].label(attribute.key)
    for attribute in sa_inspect(Job).column_attrs
    if attribute.key != "report"
]


# Built once: SQLAlchemy then reuses its cache key and compiled form on every poll.
_READ_FOR_ACCOUNT = select(*_JOB_COLUMNS).where(
    Job.id == bindparam("job_id", type_=Uuid()), Job.account_id == bindparam("account_id", type_=Uuid())
)


_READ_BY_ID = select(*_JOB_COLUMNS).where(Job.id == bindparam("job_id", type_=Uuid()))


async def read_for_account_async(account_id: uuid.UUID | None, job_id: uuid.UUID) -> dict[str, Any] | None:
    """On the event loop; with `account_id` None the caller checks the owner (the poll cache does)."""
    if account_id is None:
        return await async_reads.fetch_one(_READ_BY_ID, {"job_id": job_id})
    return await async_reads.fetch_one(_READ_FOR_ACCOUNT, {"job_id": job_id, "account_id": account_id})


# Jobs ahead of a queued one: queued earlier (any account; the workers take them oldest first).
_QUEUED_AHEAD = select(func.count().label("ahead")).where(
    Job.status == bindparam("queued"), Job.created_at < bindparam("created_at", type_=Job.created_at.type)
)


async def queued_ahead_async(created_at: datetime) -> int:
    row = await async_reads.fetch_one(
        _QUEUED_AHEAD, {"queued": JobStatus.QUEUED.value, "created_at": created_at}
    )
    return int(row["ahead"]) if row else 0


def queued_ahead(connection: Connection, created_at: datetime) -> int:
    params = {"queued": JobStatus.QUEUED.value, "created_at": created_at}
    return int(connection.execute(_QUEUED_AHEAD, params).scalar_one())


# The last succeeded dubs, for the ETA of those still queued or running (served by ix_jobs_status_updated).
_RECENT_SUCCEEDED = (
    select(Job.started_at, Job.finished_at, Job.media)
    .where(Job.status == JobStatus.SUCCEEDED, Job.started_at.is_not(None), Job.finished_at.is_not(None))
    .order_by(Job.updated_at.desc())
    .limit(bindparam("limit"))
)


def recent_succeeded(connection: Connection, limit: int) -> Sequence[Row[Any]]:
    return connection.execute(_RECENT_SUCCEEDED, {"limit": limit}).all()


def recent_render_rates(connection: Connection, model: str, limit: int) -> list[float]:
    """Render seconds per re-rendered frame of the last succeeded dubs with `model` (for preflights)."""
    statement = (
        select(Job.stage_seconds, Job.frames_rendered)
        .where(Job.status == JobStatus.SUCCEEDED, Job.model == model, Job.frames_rendered > 0)
        .order_by(Job.updated_at.desc())
        .limit(limit)
    )
    return [
        float(stages["render"]) / frames
        for stages, frames in connection.execute(statement)
        if stages and stages.get("render") is not None
    ]


def processing_count(connection: Connection) -> int:
    statement = select(func.count()).where(Job.status == JobStatus.PROCESSING)
    return int(connection.execute(statement).scalar_one())


def read_for_account(connection: Connection, account_id: uuid.UUID, job_id: uuid.UUID) -> Row[Any] | None:
    """The job as a plain row: the status poll's one query, without the ORM's per-object work."""
    return connection.execute(_READ_FOR_ACCOUNT, {"job_id": job_id, "account_id": account_id}).first()


def count_active_for_key(session: Session, api_key_id: uuid.UUID) -> int:
    statement = select(func.count()).where(Job.api_key_id == api_key_id, Job.status.in_(ACTIVE_STATUSES))
    return int(session.scalar(statement) or 0)


def list_for_account(
    session: Session,
    account_id: uuid.UUID,
    *,
    status: str | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Job]:
    statement = select(Job).where(Job.account_id == account_id)
    if status:
        statement = statement.where(Job.status == status)
    if after is not None:
        created_at, job_id = after
        statement = statement.where(
            or_(Job.created_at < created_at, and_(Job.created_at == created_at, Job.id < job_id))
        )
    statement = statement.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    return list(session.scalars(statement))


def add_event(
    session: Session, job_id: uuid.UUID, event_type: str, data: dict[str, Any] | None = None
) -> None:
    session.add(JobEvent(job_id=job_id, type=event_type, data=data or {}))


def _changed(result: Any) -> bool:
    assert isinstance(result, CursorResult)
    return bool(result.rowcount)


def claim(session: Session, job_id: uuid.UUID) -> int | None:
    """queued → processing. Returns this run's attempt number, or None when another run has the job."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(
            status=JobStatus.PROCESSING,
            attempts=Job.attempts + 1,
            started_at=func.coalesce(Job.started_at, now),
            heartbeat_at=now,
            updated_at=now,
            progress_stage="starting",
            progress_percent=0.0,
        )
        .execution_options(synchronize_session=False)
    )
    if not _changed(result):
        return None
    attempts = session.scalar(select(Job.attempts).where(Job.id == job_id))
    return int(attempts or 0)


def _owned(job_id: uuid.UUID, attempt: int) -> Any:
    # Only the run that claimed the job may move it on; a run the reaper gave up on is ignored.
    return and_(Job.id == job_id, Job.status == JobStatus.PROCESSING, Job.attempts == attempt)


def heartbeat(
    session: Session,
    job_id: uuid.UUID,
    attempt: int,
    stage: str,
    percent: float,
    bytes_fetched: int | None = None,
) -> bool:
    now = utcnow()
    values: dict[str, Any] = {"progress_stage": stage, "progress_percent": percent}
    if bytes_fetched is not None:
        values["progress_bytes"] = bytes_fetched
    result = session.execute(
        update(Job)
        .where(_owned(job_id, attempt))
        .values(**values, heartbeat_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def record_media(session: Session, job_id: uuid.UUID, attempt: int, media: dict[str, Any]) -> bool:
    result = session.execute(
        update(Job)
        .where(_owned(job_id, attempt))
        .values(media=media, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def run_state(session: Session, job_id: uuid.UUID, attempt: int) -> tuple[bool, bool]:
    """(whether this attempt still holds the job, whether a cancel was requested), in one query."""
    row = session.execute(
        select(_owned(job_id, attempt), Job.cancel_requested_at.is_not(None)).where(Job.id == job_id)
    ).first()
    if row is None:
        return False, False
    return bool(row[0]), bool(row[1])


def finish(session: Session, job_id: uuid.UUID, attempt: int, status: JobStatus, **values: Any) -> bool:
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(_owned(job_id, attempt))
        .values(status=status, finished_at=now, updated_at=now, heartbeat_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def cancel_queued(session: Session, job_id: uuid.UUID) -> bool:
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(
            status=JobStatus.CANCELED,
            cancel_requested_at=now,
            finished_at=now,
            updated_at=now,
            error_code="canceled",
            error_message="Canceled on request.",
        )
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def request_cancel(session: Session, job_id: uuid.UUID) -> bool:
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.PROCESSING, Job.cancel_requested_at.is_(None))
        .values(cancel_requested_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def stale_processing(session: Session, before: datetime, limit: int = 100) -> list[Job]:
    statement = (
        select(Job)
        .where(
            Job.status == JobStatus.PROCESSING,
            Job.heartbeat_at < before,
            # Once a fanned-out job is planned, its rows (segments, chunks, the join) are reaped one by one.
            ~select(JobSegment.index)
            .where(JobSegment.job_id == Job.id, JobSegment.job_attempt == Job.attempts)
            .exists(),
        )
        .order_by(Job.heartbeat_at)
        .limit(limit)
    )
    return list(session.scalars(statement))


def stale_queued(session: Session, before: datetime, limit: int = 100) -> list[Job]:
    statement = (
        select(Job)
        .where(Job.status == JobStatus.QUEUED, Job.updated_at < before)
        .order_by(Job.updated_at)
        .limit(limit)
    )
    return list(session.scalars(statement))


def requeue(session: Session, job_id: uuid.UUID, attempt: int) -> bool:
    """processing (stale) → queued, for the same attempt the reaper saw."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(_owned(job_id, attempt))
        .values(status=JobStatus.QUEUED, updated_at=now, progress_stage="queued", progress_percent=0.0)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def touch_queued(session: Session, job_id: uuid.UUID) -> bool:
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def delete(session: Session, job_id: uuid.UUID) -> None:
    session.execute(sa_delete(Job).where(Job.id == job_id))
