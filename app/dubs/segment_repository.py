"""SQL for the work rows of a fanned-out job: its segments to render, its chunks to encode and the join (a
row's `kind`). Like the job's, every change is a conditional UPDATE on the job attempt that planned the row,
so a redelivered or late task changes nothing."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.models import Job, JobSegment, JobStatus, SegmentKind, SegmentStatus
from app.models.base import utcnow

# The job's progress stages while its segments render and while its chunks are encoded and joined.
STAGE_RENDERING = "rendering"
STAGE_ASSEMBLING = "assembling"
# The kinds a job runs, in order: the first with rows is queued at once, each later one when the one before is
# done.
PHASES = (SegmentKind.RENDER, SegmentKind.ENCODE, SegmentKind.JOIN)


def _changed(result: Any) -> bool:
    assert isinstance(result, CursorResult)
    return bool(result.rowcount)


def replace_plan(
    session: Session, job_id: uuid.UUID, job_attempt: int, work: dict[SegmentKind, dict[int, int]]
) -> SegmentKind:
    """The rows of this attempt, `work[kind]`: frame count by index (an earlier attempt's rows go). The first
    kind of `PHASES` with rows is queued, the later ones wait; returns that kind."""
    session.execute(delete(JobSegment).where(JobSegment.job_id == job_id))
    first = next(kind for kind in PHASES if work.get(kind))
    now = utcnow()
    session.add_all(
        JobSegment(
            job_id=job_id,
            kind=kind,
            index=index,
            job_attempt=job_attempt,
            status=SegmentStatus.QUEUED if kind == first else SegmentStatus.WAITING,
            frame_count=count,
            attempts=0,
            updated_at=now,
        )
        for kind, frame_counts in work.items()
        for index, count in frame_counts.items()
    )
    return first


def release_next(session: Session, job_id: uuid.UUID, job_attempt: int, kind: str) -> tuple[str, list[int]]:
    """The job's `kind` rows are done: the next kind that has rows goes from waiting to queued. Returns it
    and its indices (no indices: nothing is left to run)."""
    for following in PHASES[PHASES.index(SegmentKind(kind)) + 1 :]:
        rows = session.execute(
            update(JobSegment)
            .where(
                JobSegment.job_id == job_id,
                JobSegment.job_attempt == job_attempt,
                JobSegment.kind == following,
                JobSegment.status == SegmentStatus.WAITING,
            )
            .values(status=SegmentStatus.QUEUED, updated_at=utcnow())
            .returning(JobSegment.index)
            .execution_options(synchronize_session=False)
        )
        indices = sorted(rows.scalars())
        if indices:
            return following, indices
    return kind, []


def lock_job(session: Session, job_id: uuid.UUID) -> Job | None:
    """The job row, locked until commit: segment completions of one job are counted one at a time."""
    return session.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()


def claim(
    session: Session, job_id: uuid.UUID, job_attempt: int, kind: str, index: int, worker: str
) -> int | None:
    """queued → running; returns the row's attempt number, or None when it is not this task's to run."""
    now = utcnow()
    result = session.execute(
        update(JobSegment)
        .where(
            JobSegment.job_id == job_id,
            JobSegment.kind == kind,
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


def _running(job_id: uuid.UUID, job_attempt: int, kind: str, index: int, attempt: int) -> Any:
    return (
        (JobSegment.job_id == job_id)
        & (JobSegment.kind == kind)
        & (JobSegment.index == index)
        & (JobSegment.job_attempt == job_attempt)
        & (JobSegment.status == SegmentStatus.RUNNING)
        & (JobSegment.attempts == attempt)
    )


def heartbeat(
    session: Session, job_id: uuid.UUID, job_attempt: int, kind: str, index: int, attempt: int
) -> bool:
    now = utcnow()
    result = session.execute(
        update(JobSegment)
        .where(_running(job_id, job_attempt, kind, index, attempt))
        .values(heartbeat_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def finish(
    session: Session,
    job_id: uuid.UUID,
    job_attempt: int,
    kind: str,
    index: int,
    attempt: int,
    status: SegmentStatus,
    **values: Any,
) -> bool:
    """running → done | failed | queued (given back), for the run that holds the row."""
    result = session.execute(
        update(JobSegment)
        .where(_running(job_id, job_attempt, kind, index, attempt))
        .values(status=status, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def counts(session: Session, job_id: uuid.UUID, job_attempt: int, kinds: tuple[str, ...]) -> tuple[int, int]:
    """(rows done, rows planned) of these kinds for the attempt."""
    done = func.count().filter(JobSegment.status == SegmentStatus.DONE)
    row = session.execute(
        select(done, func.count()).where(
            JobSegment.job_id == job_id, JobSegment.job_attempt == job_attempt, JobSegment.kind.in_(kinds)
        )
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
            JobSegment.kind == SegmentKind.RENDER,
            JobSegment.status == SegmentStatus.QUEUED,
            (JobSegment.job_id != job_id) | (JobSegment.index < index),
        )
    )
    return int(session.scalar(statement) or 0)


def work_totals(session: Session, job_id: uuid.UUID, kind: str) -> tuple[float, int]:
    """(seconds the job's `kind` tasks worked, frames the renderer changed) over its rows."""
    row = session.execute(
        select(func.sum(JobSegment.render_seconds), func.sum(JobSegment.frames_rendered)).where(
            JobSegment.job_id == job_id, JobSegment.kind == kind
        )
    ).one()
    return float(row[0] or 0.0), int(row[1] or 0)


def indices(session: Session, job_id: uuid.UUID, job_attempt: int) -> list[tuple[str, int]]:
    """(kind, index) of every row of the attempt."""
    statement = select(JobSegment.kind, JobSegment.index).where(
        JobSegment.job_id == job_id, JobSegment.job_attempt == job_attempt
    )
    return [(kind, index) for kind, index in session.execute(statement)]


_UNFINISHED = (SegmentStatus.WAITING, SegmentStatus.QUEUED, SegmentStatus.RUNNING)


def unfinished(session: Session, job_id: uuid.UUID) -> list[JobSegment]:
    statement = select(JobSegment).where(JobSegment.job_id == job_id, JobSegment.status.in_(_UNFINISHED))
    return list(session.scalars(statement))


def close_unfinished(session: Session, job_id: uuid.UUID, code: str) -> None:
    """The job ended: its waiting and queued rows will not run, and a running one may not finish it."""
    session.execute(
        update(JobSegment)
        .where(JobSegment.job_id == job_id, JobSegment.status.in_(_UNFINISHED))
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
        .where(_running(segment.job_id, segment.job_attempt, segment.kind, segment.index, segment.attempts))
        .values(status=SegmentStatus.QUEUED, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def touch_queued(session: Session, segment: JobSegment) -> bool:
    result = session.execute(
        update(JobSegment)
        .where(
            JobSegment.job_id == segment.job_id,
            JobSegment.kind == segment.kind,
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
    """Jobs asked to cancel while their segments or chunks wait for workers (no running task may see the
    cancel)."""
    statement = (
        select(Job)
        .where(
            Job.status == JobStatus.PROCESSING,
            Job.progress_stage.in_((STAGE_RENDERING, STAGE_ASSEMBLING)),
            Job.cancel_requested_at.is_not(None),
        )
        .limit(limit)
    )
    return list(session.scalars(statement))
