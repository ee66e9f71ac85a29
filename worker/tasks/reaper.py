"""Gives work back that a dead worker left behind, and re-sends tasks a broker outage may have lost."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.core import idempotency, metrics
from app.core.config import get_settings
from app.core.db import new_session
from app.core.queue import TASK_PROCESS_DUB, PendingTask, dub_queue, enqueue_after_commit
from app.dubs import repository
from app.dubs import segment_repository as segments
from app.models import Job, JobStatus
from app.models.base import utcnow
from app.webhooks import service as webhooks

logger = logging.getLogger(__name__)


def reap() -> int:
    settings = get_settings()
    now = utcnow()
    handled = 0
    with new_session() as session:
        for job in repository.stale_processing(
            session, now - timedelta(seconds=settings.stale_processing_after_s)
        ):
            if job.attempts >= settings.max_job_attempts:
                # A job that kills its worker every time must not loop forever.
                if repository.finish(
                    session,
                    job.id,
                    job.attempts,
                    JobStatus.FAILED,
                    error_code="worker_lost",
                    error_message=f"The worker stopped {job.attempts} times while dubbing.",
                    error_retryable=True,
                ):
                    repository.add_event(session, job.id, "failed", {"code": "worker_lost"})
                    metrics.JOBS_FINISHED.labels(JobStatus.FAILED.value).inc()
                    session.refresh(job)
                    webhooks.emit(session, job, "dub.failed")
                    handled += 1
            elif repository.requeue(session, job.id, job.attempts):
                repository.add_event(session, job.id, "requeued", {"attempt": job.attempts})
                enqueue_after_commit(
                    session, PendingTask(TASK_PROCESS_DUB, (str(job.id),), dub_queue(settings))
                )
                handled += 1
            logger.warning("reaped stale job", extra={"job_id": str(job.id), "attempts": job.attempts})
        for job in repository.stale_queued(session, now - timedelta(seconds=settings.stale_queued_after_s)):
            if repository.touch_queued(session, job.id):
                enqueue_after_commit(
                    session, PendingTask(TASK_PROCESS_DUB, (str(job.id),), dub_queue(settings))
                )
                handled += 1
        ended: list[tuple[uuid.UUID, int, list[tuple[str, int]]]] = []
        handled += _reap_segments(session, now, ended)
        idempotency.purge_expired(session)
        session.commit()
    if ended:
        from worker.tasks.fanout import remove_work

        for job_id, attempt, indices in ended:
            remove_work(job_id, attempt, indices)
    return handled


def _reap_segments(
    session: Session, now: datetime, ended: list[tuple[uuid.UUID, int, list[tuple[str, int]]]]
) -> int:
    """Fanned-out jobs: rows (segments, chunks, the join) whose worker died run again, lost tasks are sent
    again, and a job past its deadline or canceled while its rows wait ends (its work objects go after the
    commit: `ended` collects them)."""
    from worker.engine.errors import DEADLINE_EXCEEDED
    from worker.tasks.fanout import send_unit

    settings = get_settings()
    handled = 0
    for segment in segments.stale_running(
        session, now - timedelta(seconds=settings.stale_processing_after_s)
    ):
        if segment.attempts >= settings.max_job_attempts:
            message = (
                f"The worker stopped {segment.attempts} times while running {segment.kind} {segment.index}."
            )
            handled += _end(session, segment.job_id, segment.job_attempt, "worker_lost", message, ended)
        elif segments.requeue_stale(session, segment):
            send_unit(session, segment.job_id, segment.job_attempt, segment.kind, segment.index)
            handled += 1
        logger.warning(
            "reaped stale segment", extra={"job_id": str(segment.job_id), "segment": segment.index}
        )
    for segment in segments.stale_queued(session, now - timedelta(seconds=settings.stale_queued_after_s)):
        if segments.touch_queued(session, segment):
            send_unit(session, segment.job_id, segment.job_attempt, segment.kind, segment.index)
            handled += 1
    if settings.job_deadline_s > 0:
        message = f"The dub did not finish within {settings.job_deadline_s:g} s."
        for job in segments.processing_past(session, now - timedelta(seconds=settings.job_deadline_s)):
            handled += _end(session, job.id, job.attempts, DEADLINE_EXCEEDED, message, ended)
    for job in segments.canceled_while_rendering(session):
        if repository.finish(
            session,
            job.id,
            job.attempts,
            JobStatus.CANCELED,
            error_code="canceled",
            error_message="Canceled on request.",
        ):
            repository.add_event(session, job.id, "canceled", {"code": "canceled"})
            ended.append((job.id, job.attempts, segments.indices(session, job.id, job.attempts)))
            segments.close_unfinished(session, job.id, "canceled")
            session.refresh(job)
            webhooks.emit(session, job, "dub.canceled")
            handled += 1
    return handled


def _end(
    session: Session,
    job_id: uuid.UUID,
    attempt: int,
    code: str,
    message: str,
    ended: list[tuple[uuid.UUID, int, list[tuple[str, int]]]],
) -> int:
    """Fail a processing job (retryable: the worker or the fleet failed it, not its input)."""
    if not repository.finish(
        session,
        job_id,
        attempt,
        JobStatus.FAILED,
        error_code=code,
        error_message=message,
        error_retryable=True,
    ):
        return 0
    repository.add_event(session, job_id, "failed", {"code": code})
    metrics.JOBS_FINISHED.labels(JobStatus.FAILED.value).inc()
    indices = segments.indices(session, job_id, attempt)
    if indices:
        ended.append((job_id, attempt, indices))
    segments.close_unfinished(session, job_id, code)
    job = session.get(Job, job_id)
    assert job is not None
    session.refresh(job)
    webhooks.emit(session, job, "dub.failed")
    return 1
