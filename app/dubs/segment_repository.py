"""SQL for the segments of a fanned-out job. Like the job's, every change is a conditional UPDATE on the
job attempt that planned the segment, so a redelivered or late segment task changes nothing."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.models import Job, JobSegment, JobStatus, SegmentStatus
from app.models.base import utcnow

# The job's progress stages while its segments render and while the assembly runs.
STAGE_RENDERING = "rendering"
STAGE_ASSEMBLING = "assembling"


def _changed(result: Any) -> bool:
    assert isinstance(result, CursorResult)
    return bool(result.rowcount)


def replace_plan(session: Session, job_id: uuid.UUID, job_attempt: int, frame_counts: dict[int, int]) -> None:
    """The segments to render for this attempt (an earlier attempt's rows go)."""
    session.execute(delete(JobSegment).where(JobSegment.job_id == job_id))
    now = utcnow()
    session.add_all(
        JobSegment(
            job_id=job_id,
            index=index,
            job_attempt=job_attempt,
            status=SegmentStatus.QUEUED,
            frame_count=count,
            attempts=0,
            updated_at=now,
        )
        for index, count in frame_counts.items()
    )


def lock_job(session: Session, job_id: uuid.UUID) -> Job | None:
    """The job row, locked until commit: segment completions of one job are counted one at a time."""
    return session.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()


def claim(session: Session, job_id: uuid.UUID, job_attempt: int, index: int, worker: str) -> int | None:
    """queued → running; returns the segment's attempt number, or None when it is not this task's to run."""
    now = utcnow()
    result = session.execute(
        update(JobSegment)
        .where(
            JobSegment.job_id == job_id,
            JobSegment.index == index,
            JobSegment.job_attempt == job_attempt,
            JobSegment.status == SegmentStatus.QUEUED,
        )
        .values(
            status=SegmentStatus.RUNNING,
            attempts=JobSegment.attempts + 1,
            worker=worker,
            heartbeat_at=now,
            updated_at=now,
        )
        .returning(JobSegment.attempts)
    )
    attempts = result.scalar_one_or_none()
    return int(attempts) if attempts is not None else None


def _running(job_id: uuid.UUID, job_attempt: int, index: int, attempt: int) -> Any:
    return (
        (JobSegment.job_id == job_id)
        & (JobSegment.index == index)
        & (JobSegment.job_attempt == job_attempt)
        & (JobSegment.status == SegmentStatus.RUNNING)
        & (JobSegment.attempts == attempt)
    )


def heartbeat(session: Session, job_id: uuid.UUID, job_attempt: int, index: int, attempt: int) -> bool:
    now = utcnow()
    result = session.execute(
        update(JobSegment)
        .where(_running(job_id, job_attempt, index, attempt))
        .values(heartbeat_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def finish(
    session: Session,
    job_id: uuid.UUID,
    job_attempt: int,
    index: int,
    attempt: int,
    status: SegmentStatus,
    **values: Any,
) -> bool:
    """running → done | failed | queued (given back), for the run that holds the segment."""
    result = session.execute(
        update(JobSegment)
        .where(_running(job_id, job_attempt, index, attempt))
        .values(status=status, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def counts(session: Session, job_id: uuid.UUID, job_attempt: int) -> tuple[int, int]:
    """(segments done, segments planned) for the attempt."""
    done = func.count().filter(JobSegment.status == SegmentStatus.DONE)
    row = session.execute(
        select(done, func.count()).where(JobSegment.job_id == job_id, JobSegment.job_attempt == job_attempt)
    ).one()
    return int(row[0]), int(row[1])


def queued_ahead(session: Session, job_id: uuid.UUID, index: int) -> int:
    """How many queued segments of the job's account stand before segment `index` of the job: every one
    of the account's other rendering jobs, and the job's own of lower index."""
    account = select(Job.account_id).where(Job.id == job_id).scalar_subquery()
    statement = (
        select(func.count())
        .select_from(JobSegment)
        .join(Job, Job.id == JobSegment.job_id)
        .where(
            Job.account_id == account,
            Job.status == JobStatus.PROCESSING,
            Job.attempts == JobSegment.job_attempt,
            JobSegment.status == SegmentStatus.QUEUED,
            (JobSegment.job_id != job_id) | (JobSegment.index < index),
        )
    )
    return int(session.scalar(statement) or 0)


def render_seconds(session: Session, job_id: uuid.UUID) -> float:
    total = session.scalar(select(func.sum(JobSegment.render_seconds)).where(JobSegment.job_id == job_id))
    return float(total or 0.0)


def indices(session: Session, job_id: uuid.UUID, job_attempt: int) -> list[int]:
    statement = select(JobSegment.index).where(
        JobSegment.job_id == job_id, JobSegment.job_attempt == job_attempt
    )
    return list(session.scalars(statement))


def unfinished(session: Session, job_id: uuid.UUID) -> list[JobSegment]:
    statement = select(JobSegment).where(
        JobSegment.job_id == job_id, JobSegment.status.in_((SegmentStatus.QUEUED, SegmentStatus.RUNNING))
    )
    return list(session.scalars(statement))


def close_unfinished(session: Session, job_id: uuid.UUID, code: str) -> None:
    """The job ended: its queued segments will not run, and a running one may not finish it."""
    session.execute(
        update(JobSegment)
        .where(
            JobSegment.job_id == job_id,
            JobSegment.status.in_((SegmentStatus.QUEUED, SegmentStatus.RUNNING)),
        )
        .values(status=SegmentStatus.CANCELED, error_code=code, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def set_stage(
    session: Session,
    job_id: uuid.UUID,
    job_attempt: int,
    stage: str,
    percent: float,
    *,
    from_stage: str | None,
) -> bool:
    """The job's stage and percent, for the attempt that owns it; with `from_stage`, only from that stage
    (so exactly one segment task starts the assembly)."""
    now = utcnow()
    condition = (Job.id == job_id) & (Job.status == JobStatus.PROCESSING) & (Job.attempts == job_attempt)
    if from_stage is not None:
        condition &= Job.progress_stage == from_stage
    result = session.execute(
        update(Job)
        .where(condition)
        .values(progress_stage=stage, progress_percent=percent, heartbeat_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def _stale(
    session: Session, status: SegmentStatus, since: InstrumentedAttribute[Any], before: datetime, limit: int
) -> list[JobSegment]:
    """Segments in `status` whose `since` time is before `before`, of jobs still rendering this attempt."""
    statement = (
        select(JobSegment)
        .join(Job, Job.id == JobSegment.job_id)
        .where(
            JobSegment.status == status,
            since < before,
            Job.status == JobStatus.PROCESSING,
            Job.attempts == JobSegment.job_attempt,
        )
        .order_by(since)
        .limit(limit)
    )
    return list(session.scalars(statement))


def stale_running(session: Session, before: datetime, limit: int = 100) -> list[JobSegment]:
    """Running segments whose worker stopped beating, of jobs still rendering."""
    return _stale(session, SegmentStatus.RUNNING, JobSegment.heartbeat_at, before, limit)


def stale_queued(session: Session, before: datetime, limit: int = 100) -> list[JobSegment]:
    """Queued segments waiting longer than a lost task would explain, of jobs still rendering."""
    return _stale(session, SegmentStatus.QUEUED, JobSegment.updated_at, before, limit)


def requeue_stale(session: Session, segment: JobSegment) -> bool:
    """running (stale) → queued, for the same run the reaper saw."""
    result = session.execute(
        update(JobSegment)
        .where(_running(segment.job_id, segment.job_attempt, segment.index, segment.attempts))
        .values(status=SegmentStatus.QUEUED, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def touch_queued(session: Session, segment: JobSegment) -> bool:
    result = session.execute(
        update(JobSegment)
        .where(
            JobSegment.job_id == segment.job_id,
            JobSegment.index == segment.index,
            JobSegment.job_attempt == segment.job_attempt,
            JobSegment.status == SegmentStatus.QUEUED,
        )
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def processing_past(session: Session, started_before: datetime, limit: int = 100) -> list[Job]:
    """Processing jobs that started before `started_before` (past their deadline)."""
    statement = (
        select(Job)
        .where(Job.status == JobStatus.PROCESSING, Job.started_at < started_before)
        .order_by(Job.started_at)
        .limit(limit)
    )
    return list(session.scalars(statement))


def canceled_while_rendering(session: Session, limit: int = 100) -> list[Job]:
    """Jobs asked to cancel while their segments wait for workers (no running task may see the cancel)."""
    statement = (
        select(Job)
        .where(
            Job.status == JobStatus.PROCESSING,
            Job.progress_stage == STAGE_RENDERING,
            Job.cancel_requested_at.is_not(None),
        )
        .limit(limit)
    )
    return list(session.scalars(statement))
