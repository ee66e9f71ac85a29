"""The Celery application: Redis broker (or kombu's filesystem transport in embedded mode), no result
backend (SQL holds every job's state), one task at a time per worker process, acknowledged only when done."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from app.core.config import Settings, get_settings
from app.core.queue import (
    QUEUE_DEFAULT,
    QUEUE_GPU,
    QUEUE_WEBHOOKS,
    TASK_REAP,
    TASK_SWEEP_EXPIRED,
    TASK_SWEEP_WEBHOOKS,
    broker_transport_options,
)


def create_celery(settings: Settings) -> Celery:
    app = Celery(
        "redub", broker=settings.celery_broker_url, include=["worker.tasks.dubs", "worker.tasks.webhooks"]
    )
    app.conf.update(
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        # A worker killed mid-task (OOM, preemption) puts the task back instead of acknowledging it.
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE_DEFAULT,
        task_queues=[Queue(QUEUE_DEFAULT), Queue(QUEUE_GPU), Queue(QUEUE_WEBHOOKS)],
        broker_transport_options=broker_transport_options(settings),
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_serializer="json",
        accept_content=["json"],
        beat_schedule_filename=settings.beat_schedule_path,
        beat_schedule={
            "reap-stale-jobs": {"task": TASK_REAP, "schedule": settings.reaper_interval_s},
            "sweep-webhooks": {"task": TASK_SWEEP_WEBHOOKS, "schedule": settings.webhook_sweep_interval_s},
            "sweep-expired": {"task": TASK_SWEEP_EXPIRED, "schedule": settings.retention_sweep_interval_s},
        },
    )
    return app


celery_app = create_celery(get_settings())
