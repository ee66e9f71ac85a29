"""The Celery application: Redis broker (or kombu's filesystem transport in embedded mode), no result
backend (SQL holds every job's state), one task at a time per worker process, acknowledged only when done."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from celery import Celery, signals
from kombu import Queue

from app.core.config import Settings, get_settings
from app.core.logging import log_fields
from app.core.queue import (
    QUEUE_DEFAULT,
    QUEUE_GPU,
    QUEUE_WEBHOOKS,
    TASK_ASSEMBLE,
    TASK_DELIVER_WEBHOOK,
    TASK_ENCODE_CHUNK,
    TASK_PREFLIGHT,
    TASK_PROCESS_DUB,
    TASK_REAP,
    TASK_RENDER_SEGMENT,
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

# What a task's first argument is, as a log field: every line the task writes names its job (or delivery).
_SUBJECT = {
    TASK_PROCESS_DUB: "job_id",
    TASK_RENDER_SEGMENT: "job_id",
    TASK_ASSEMBLE: "job_id",
    TASK_ENCODE_CHUNK: "job_id",
    TASK_PREFLIGHT: "preflight_id",
    TASK_DELIVER_WEBHOOK: "delivery_id",
}
_task_log_fields: dict[str, contextlib.ExitStack] = {}


@signals.task_prerun.connect
def _enter_task_log_fields(task_id: str, task: Any, args: Any = (), **_: Any) -> None:
    fields = {"task": str(task.name), "task_id": task_id}
    subject = _SUBJECT.get(task.name)
    if subject is not None and args:
        fields[subject] = str(args[0])
    stack = contextlib.ExitStack()
    stack.enter_context(log_fields(**fields))
    _task_log_fields[task_id] = stack


@signals.task_postrun.connect
def _leave_task_log_fields(task_id: str, **_: Any) -> None:
    stack = _task_log_fields.pop(task_id, None)
    if stack is not None:
        stack.close()


@signals.worker_init.connect
def _serve_metrics(**_: Any) -> None:
    port = get_settings().metrics_port
    if port:
        from app.core.metrics import serve_worker_metrics

        serve_worker_metrics(port)


@signals.worker_process_shutdown.connect
def _forget_pool_process(**_: Any) -> None:
    from app.core.metrics import forget_process

    forget_process(os.getpid())
