from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from app.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def endpoint_for(session: Session, account_id: uuid.UUID, url: str) -> WebhookEndpoint | None:
    statement = select(WebhookEndpoint).where(
        WebhookEndpoint.account_id == account_id, WebhookEndpoint.url == url
    )
    return session.scalars(statement).first()


def deliveries_for_job(session: Session, job_id: uuid.UUID) -> list[WebhookDelivery]:
    statement = (
        select(WebhookDelivery).where(WebhookDelivery.job_id == job_id).order_by(WebhookDelivery.created_at)
    )
    return list(session.scalars(statement))


def last_recorded(session: Session, job_id: uuid.UUID, event_type: str) -> datetime | None:
    """When the job's latest `event_type` delivery was recorded (None: never)."""
    statement = select(func.max(WebhookDelivery.created_at)).where(
        WebhookDelivery.job_id == job_id, WebhookDelivery.event_type == event_type
    )
    return session.scalar(statement)


def attempts_for(session: Session, delivery_ids: list[uuid.UUID]) -> list[WebhookAttempt]:
    if not delivery_ids:
        return []
    statement = (
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttempt.number)
    )
    return list(session.scalars(statement))


def lease(session: Session, delivery_id: uuid.UUID, now: datetime | None, until: datetime) -> bool:
    """Claim a due delivery for one attempt; a second copy of the task finds nothing due and stops.
    `now` None: any pending delivery (a manual redelivery does not wait for its retry time)."""
    conditions = [WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending"]
    if now is not None:
        conditions.append(WebhookDelivery.next_attempt_at <= now)
    result = session.execute(
        update(WebhookDelivery)
        .where(*conditions)
        .values(next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    return bool(result.rowcount)


def due(session: Session, now: datetime, limit: int = 200) -> list[uuid.UUID]:
    statement = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    return list(session.scalars(statement))


def attempts_made(session: Session, delivery_id: uuid.UUID) -> int:
    statement = select(func.count()).where(WebhookAttempt.delivery_id == delivery_id)
    return int(session.scalar(statement) or 0)


def next_attempt_at(session: Session, delivery_id: uuid.UUID) -> datetime | None:
    return session.scalar(select(WebhookDelivery.next_attempt_at).where(WebhookDelivery.id == delivery_id))
