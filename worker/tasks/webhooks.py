from __future__ import annotations

import uuid

from app.core.db import new_session
from app.core.queue import TASK_DELIVER_WEBHOOK, TASK_SWEEP_WEBHOOKS
from app.webhooks import service
from worker.celery_app import celery_app


@celery_app.task(name=TASK_DELIVER_WEBHOOK)
def deliver_webhook(delivery_id: str, mode: str = "scheduled") -> str:
    with new_session() as session:
        return service.deliver(session, uuid.UUID(delivery_id), manual=mode == "manual")


@celery_app.task(name=TASK_SWEEP_WEBHOOKS)
def sweep_webhooks() -> int:
    with new_session() as session:
        return service.sweep(session)
