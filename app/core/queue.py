"""Send Celery tasks by name, only after the transaction that made them necessary has committed.

The API never imports the worker's code: a task is a name, a queue and a list of ids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis
from celery import Celery
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.core.config import Settings, get_settings

logger = logging.getLogger(__name__)

QUEUE_DEFAULT = "default"
QUEUE_GPU = "gpu"
QUEUE_WEBHOOKS = "webhooks"

TASK_PROCESS_DUB = "redub.dubs.process"
TASK_REAP = "redub.dubs.reap"
TASK_PREFLIGHT = "redub.dubs.preflight"
TASK_RENDER_SEGMENT = "redub.dubs.segment"
TASK_ASSEMBLE = "redub.dubs.assemble"
TASK_ENCODE_CHUNK = "redub.dubs.encode_chunk"
TASK_SWEEP_EXPIRED = "redub.retention.sweep"
TASK_DELIVER_WEBHOOK = "redub.webhooks.deliver"
TASK_SWEEP_WEBHOOKS = "redub.webhooks.sweep"

_OUTBOX_KEY = "redub_outbox"


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {"visibility_timeout": settings.broker_visibility_timeout_s}
    if settings.celery_broker_url.startswith("filesystem"):
        folder = settings.broker_folder or "data/queue"
        # kombu keeps its exchange tables in ./control unless told otherwise: keep them with the queue.
        options.update(
            {"data_folder_in": folder, "data_folder_out": folder, "control_folder": f"{folder}/control"}
        )
    elif settings.redis_key_prefix:
        options["global_keyprefix"] = settings.redis_key_prefix
    return options


def dub_queue(settings: Settings) -> str:
    """Where a dub's own task goes: with fan-out it only fetches, analyses and plans (CPU work) and the GPU
    workers take its segments; without, it renders the whole dub on a GPU worker."""
    return QUEUE_DEFAULT if settings.fanout else QUEUE_GPU


# kombu's Redis transport keeps a queue as a list under its name, and one list per priority step beside it.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


@lru_cache(maxsize=4)
def _broker_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def queue_lengths(names: list[str]) -> dict[str, int]:
    """Tasks waiting in each Redis-brokered queue (taken by no worker yet), in one round trip."""
    settings = get_settings()
    keys = [f"{settings.redis_key_prefix}{name}{suffix}" for name in names for suffix in _PRIORITY_SUFFIXES]
    with _broker_client(settings.celery_broker_url).pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.llen(key)
        lengths = pipe.execute()
    per_queue = len(_PRIORITY_SUFFIXES)
    return {name: sum(lengths[i * per_queue : (i + 1) * per_queue]) for i, name in enumerate(names)}


@lru_cache(maxsize=4)
def _producer(broker_url: str, options_key: tuple[tuple[str, Any], ...]) -> Celery:
    producer = Celery("redub-api", broker=broker_url)
    producer.conf.broker_transport_options = dict(options_key)
    producer.conf.broker_connection_retry_on_startup = True
    return producer


def producer() -> Celery:
    settings = get_settings()
    options = broker_transport_options(settings)
    return _producer(settings.celery_broker_url, tuple(sorted(options.items())))


@dataclass(frozen=True)
class PendingTask:
    name: str
    args: tuple[str, ...]
    queue: str
    countdown: float | None = None
    task_id: str | None = None  # a known id, so the task can be revoked by it
    priority: int | None = None  # kombu's Redis priority: 0 is served first, 9 last


def send_now(task: PendingTask) -> None:
    producer().send_task(
        task.name,
        args=list(task.args),
        queue=task.queue,
        countdown=task.countdown,
        task_id=task.task_id,
        priority=task.priority,
    )


def enqueue_after_commit(session: Session, task: PendingTask) -> None:
    """Queue `task` to be sent when `session` commits; a rollback drops it."""
    session.info.setdefault(_OUTBOX_KEY, []).append(task)


@event.listens_for(Session, "after_commit")
def _send_outbox(session: Session) -> None:
    tasks: list[PendingTask] = session.info.pop(_OUTBOX_KEY, [])
    for task in tasks:
        try:
            send_now(task)
        except Exception:
            # The row is committed; the reaper re-sends work whose task never arrived.
            logger.exception("could not send task", extra={"task": task.name, "args": task.args})


@event.listens_for(Session, "after_rollback")
def _drop_outbox(session: Session) -> None:
    session.info.pop(_OUTBOX_KEY, None)
