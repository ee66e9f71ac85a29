"""Gives work back that a dead worker left behind, and re-sends tasks a broker outage may have lost."""

from __future__ import annotations

import logging
from datetime import timedelta

from app.core import idempotency
from app.core.config import get_settings
from app.core.db import new_session
from app.core.queue import QUEUE_GPU, TASK_PROCESS_DUB, PendingTask, enqueue_after_commit
from app.dubs import repository
from app.models import JobStatus
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
                    session.refresh(job)
                    webhooks.emit(session, job, "dub.failed")
                    handled += 1
            elif repository.requeue(session, job.id, job.attempts):
                repository.add_event(session, job.id, "requeued", {"attempt": job.attempts})
                enqueue_after_commit(session, PendingTask(TASK_PROCESS_DUB, (str(job.id),), QUEUE_GPU))
                handled += 1
            logger.warning("reaped stale job", extra={"job_id": str(job.id), "attempts": job.attempts})
        for job in repository.stale_queued(session, now - timedelta(seconds=settings.stale_queued_after_s)):
            if repository.touch_queued(session, job.id):
                enqueue_after_commit(session, PendingTask(TASK_PROCESS_DUB, (str(job.id),), QUEUE_GPU))
                handled += 1
        idempotency.purge_expired(session)
        session.commit()
    return handled
