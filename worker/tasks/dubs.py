from __future__ import annotations

import uuid
from typing import Any

from app.core.config import get_settings
from app.core.db import DATABASE_UNAVAILABLE_ERRORS
from app.core.queue import (
    TASK_ASSEMBLE,
    TASK_ENCODE_CHUNK,
    TASK_PREFLIGHT,
    TASK_PROCESS_DUB,
    TASK_REAP,
    TASK_RENDER_SEGMENT,
    TASK_SWEEP_EXPIRED,
)
from worker.celery_app import celery_app
from worker.tasks import fanout, preflights, processing, reaper, retention

# A task that finds the database unreachable (a restart, a failover) is sent again with backoff rather than
# dropped: its dub would otherwise stay `queued` until the reaper's stale-queued bound (30 minutes). Running
# again is safe: a job, segment or preflight is claimed by a conditional UPDATE.
DATABASE_RETRIES: dict[str, Any] = {
    "autoretry_for": DATABASE_UNAVAILABLE_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": False,
    "max_retries": get_settings().task_database_retries,
}


@celery_app.task(name=TASK_PROCESS_DUB, **DATABASE_RETRIES)
def process_dub(job_id: str) -> str:
    return processing.run_job(uuid.UUID(job_id))


@celery_app.task(name=TASK_RENDER_SEGMENT, **DATABASE_RETRIES)
def render_segment(job_id: str, job_attempt: str, index: str) -> str:
    return fanout.run_segment(uuid.UUID(job_id), int(job_attempt), int(index))


@celery_app.task(name=TASK_ENCODE_CHUNK, **DATABASE_RETRIES)
def encode_chunk(job_id: str, job_attempt: str, index: str) -> str:
    return fanout.run_chunk(uuid.UUID(job_id), int(job_attempt), int(index))


@celery_app.task(name=TASK_ASSEMBLE, **DATABASE_RETRIES)
def assemble_dub(job_id: str, job_attempt: str) -> str:
    return fanout.run_join(uuid.UUID(job_id), int(job_attempt))


@celery_app.task(name=TASK_REAP)
def reap_stale_jobs() -> int:
    return reaper.reap()


@celery_app.task(name=TASK_PREFLIGHT, **DATABASE_RETRIES)
def run_preflight(preflight_id: str) -> str:
    return preflights.run_preflight(uuid.UUID(preflight_id))


@celery_app.task(name=TASK_SWEEP_EXPIRED)
def sweep_expired() -> int:
    return retention.sweep_expired()
