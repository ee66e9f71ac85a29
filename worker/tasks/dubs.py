from __future__ import annotations

import uuid

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


@celery_app.task(name=TASK_PROCESS_DUB)
def process_dub(job_id: str) -> str:
    return processing.run_job(uuid.UUID(job_id))


@celery_app.task(name=TASK_RENDER_SEGMENT)
def render_segment(job_id: str, job_attempt: str, index: str) -> str:
    return fanout.run_segment(uuid.UUID(job_id), int(job_attempt), int(index))


@celery_app.task(name=TASK_ENCODE_CHUNK)
def encode_chunk(job_id: str, job_attempt: str, index: str) -> str:
    return fanout.run_chunk(uuid.UUID(job_id), int(job_attempt), int(index))


@celery_app.task(name=TASK_ASSEMBLE)
def assemble_dub(job_id: str, job_attempt: str) -> str:
    return fanout.run_join(uuid.UUID(job_id), int(job_attempt))


@celery_app.task(name=TASK_REAP)
def reap_stale_jobs() -> int:
    return reaper.reap()


@celery_app.task(name=TASK_PREFLIGHT)
def run_preflight(preflight_id: str) -> str:
    return preflights.run_preflight(uuid.UUID(preflight_id))


@celery_app.task(name=TASK_SWEEP_EXPIRED)
def sweep_expired() -> int:
    return retention.sweep_expired()
