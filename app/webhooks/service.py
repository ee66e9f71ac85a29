"""Webhook events: recorded in SQL with the job change that caused them, sent from the `webhooks` queue,
retried with exponential backoff and jitter over about three days; `410 Gone` disables the endpoint."""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core import metrics
from app.core.config import get_settings
from app.core.errors import ApiError, not_found
from app.core.fetch import FetchError, post_pinned
from app.core.queue import QUEUE_WEBHOOKS, TASK_DELIVER_WEBHOOK, PendingTask, enqueue_after_commit
from app.core.storage import get_storage
from app.core.urls import vet_customer_url
from app.dubs.schemas import dub_out
from app.keys.schemas import AuthenticatedKey
from app.models import ApiKey, Job, Preflight, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.models.base import utcnow
from app.webhooks import repository
from app.webhooks.schemas import WebhookAttemptOut, WebhookDeliveryOut, message_id
from app.webhooks.signing import signature_header

logger = logging.getLogger(__name__)

USER_AGENT = "Redub-Webhooks/1.0"


def validate_url(url: str) -> None:
    try:
        vet_customer_url(url)
    except FetchError as error:
        raise ApiError(
            422, "webhook_url_not_allowed", f"webhook_url: {error.message}", extra={"param": "webhook_url"}
        ) from error


def ensure_endpoint(session: Session, key: AuthenticatedKey, url: str) -> WebhookEndpoint:
    endpoint = repository.endpoint_for(session, key.account_id, url)
    if endpoint is None:
        endpoint = WebhookEndpoint(account_id=key.account_id, api_key_id=key.id, url=url)
        session.add(endpoint)
        session.flush()
    elif endpoint.disabled_at is not None:
        # Giving the URL again on a new job is taken as the customer saying it works again.
        endpoint.disabled_at = None
        endpoint.disabled_reason = None
    return endpoint


def emit(session: Session, job: Job, event_type: str) -> WebhookDelivery | None:
    """Record an event for the job's endpoint and send it once the transaction commits."""
    if job.webhook_endpoint_id is None or event_type not in job.webhook_events:
        return None
    endpoint = session.get(WebhookEndpoint, job.webhook_endpoint_id)
    if endpoint is None or endpoint.disabled_at is not None:
        return None
    session.refresh(job)
    payload = {
        "type": event_type,
        "timestamp": utcnow().isoformat(),
        "data": dub_out(job, get_storage()).model_dump(mode="json"),
    }
    delivery = WebhookDelivery(
        endpoint_id=endpoint.id,
        job_id=job.id,
        event_type=event_type,
        payload=json.dumps(payload, separators=(",", ":")),
        next_attempt_at=utcnow(),
    )
    session.add(delivery)
    session.flush()
    enqueue_after_commit(session, PendingTask(TASK_DELIVER_WEBHOOK, (str(delivery.id),), QUEUE_WEBHOOKS))
    return delivery


def emit_preflight(session: Session, preflight: Preflight, event_type: str) -> WebhookDelivery | None:
    """`preflight.succeeded` / `preflight.failed` for a preflight that named a `webhook_url`."""
    from app.preflights.schemas import preflight_out

    if preflight.webhook_endpoint_id is None:
        return None
    endpoint = session.get(WebhookEndpoint, preflight.webhook_endpoint_id)
    if endpoint is None or endpoint.disabled_at is not None:
        return None
    session.flush()
    session.refresh(preflight)
    payload = {
        "type": event_type,
        "timestamp": utcnow().isoformat(),
        "data": preflight_out(preflight).model_dump(mode="json"),
    }
    delivery = WebhookDelivery(
        endpoint_id=endpoint.id,
        preflight_id=preflight.id,
        event_type=event_type,
        payload=json.dumps(payload, separators=(",", ":")),
        next_attempt_at=utcnow(),
    )
    session.add(delivery)
    session.flush()
    enqueue_after_commit(session, PendingTask(TASK_DELIVER_WEBHOOK, (str(delivery.id),), QUEUE_WEBHOOKS))
    return delivery


def _secrets(api_key: ApiKey, now: datetime) -> list[str]:
    secrets = [api_key.webhook_secret]
    expires = api_key.previous_webhook_secret_expires_at
    if api_key.previous_webhook_secret and expires is not None and expires > now:
        secrets.append(api_key.previous_webhook_secret)
    return secrets


def next_delay_s(attempt_count: int) -> float | None:
    """Delay before the next try after `attempt_count` failures; None when the schedule is spent."""
    settings = get_settings()
    schedule = settings.webhook_retry_schedule_s
    if attempt_count > len(schedule):
        return None
    base = schedule[attempt_count - 1]
    jitter = settings.webhook_jitter_fraction
    # Retry jitter, not a secret (B311).
    return float(base * (1 + random.uniform(-jitter, jitter)))  # nosec B311


def deliver(session: Session, delivery_id: uuid.UUID, manual: bool = False) -> str:
    """One delivery attempt, if one is due. Returns the delivery's status afterwards.

    `manual` (a redelivery asked for while a retry is scheduled): one extra attempt now that leaves the
    schedule alone: it neither counts as a scheduled attempt nor moves or spends the next retry."""
    settings = get_settings()
    now = utcnow()
    lease_until = now + timedelta(seconds=settings.webhook_timeout_s * 3 + 30)
    scheduled = session.scalar(
        select(WebhookDelivery.next_attempt_at).where(WebhookDelivery.id == delivery_id)
    )
    if not repository.lease(session, delivery_id, now if not manual else None, lease_until):
        return "not_due"
    session.commit()
    delivery = session.get(WebhookDelivery, delivery_id)
    assert delivery is not None
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    # Signed with the secret of the key that made the job or preflight (not of whichever key first gave the
    # URL), so each key verifies its own events; a revoked key's secret may have leaked and never signs again.
    subject = (
        session.get(Job, delivery.job_id)
        if delivery.job_id is not None
        else session.get(Preflight, delivery.preflight_id)
        if delivery.preflight_id is not None
        else None
    )
    api_key = session.get(ApiKey, subject.api_key_id) if subject is not None else None
    reason = None
    if endpoint is None or endpoint.disabled_at is not None:
        reason = "endpoint disabled"
    elif api_key is None or api_key.revoked_at is not None:
        reason = "api key revoked"
    if reason is not None:
        delivery.status = "failed"
        delivery.last_error = reason
        delivery.next_attempt_at = None
        session.commit()
        metrics.WEBHOOK_ATTEMPTS.labels("skipped").inc()
        return delivery.status
    assert endpoint is not None and api_key is not None
    timestamp = int(time.time())
    identifier = message_id(delivery.id)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": identifier,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            _secrets(api_key, now), identifier, timestamp, delivery.payload
        ),
    }
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = None
    try:
        status_code = post_pinned(
            endpoint.url,
            delivery.payload.encode(),
            headers=headers,
            timeout_s=settings.webhook_timeout_s,
            allow_private=settings.allow_private_urls,
        )
    except FetchError as failure:
        error = f"{failure.code}: {failure.message}"
    duration_ms = int((time.monotonic() - started) * 1000)
    number = repository.attempts_made(session, delivery.id) + 1
    if not manual:
        delivery.attempt_count += 1
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            number=number,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
        )
    )
    delivery.last_status_code = status_code
    delivery.last_error = error
    if status_code is not None and 200 <= status_code < 300:
        delivery.status = "delivered"
        delivery.delivered_at = utcnow()
        delivery.next_attempt_at = None
    elif status_code == 410:
        delivery.status = "failed"
        delivery.next_attempt_at = None
        endpoint.disabled_at = utcnow()
        endpoint.disabled_reason = "endpoint answered 410 Gone"
    elif manual:
        delivery.next_attempt_at = scheduled  # the scheduled retry stays where it was
    else:
        delay = next_delay_s(delivery.attempt_count)
        if delay is None:
            delivery.status = "failed"
            delivery.next_attempt_at = None
        else:
            delivery.next_attempt_at = utcnow() + timedelta(seconds=delay)
    session.commit()
    metrics.WEBHOOK_ATTEMPTS.labels(_outcome(delivery, status_code)).inc()
    logger.info(
        "webhook attempt",
        extra={
            "delivery_id": str(delivery.id),
            "job_id": str(delivery.job_id),
            "status_code": status_code,
            "error": error,
            "delivery_status": delivery.status,
        },
    )
    return delivery.status


def _outcome(delivery: WebhookDelivery, status_code: int | None) -> str:
    """An attempt's outcome, as the metrics count it (a manual redelivery's too)."""
    if status_code is not None and 200 <= status_code < 300:
        return "delivered"
    if status_code == 410:
        return "gone"
    return "retrying" if delivery.next_attempt_at is not None else "failed"


def sweep(session: Session) -> int:
    """Send every delivery whose retry time has come; run periodically by the worker's beat."""
    due = repository.due(session, utcnow())
    for delivery_id in due:
        enqueue_after_commit(session, PendingTask(TASK_DELIVER_WEBHOOK, (str(delivery_id),), QUEUE_WEBHOOKS))
    session.commit()
    return len(due)


def list_for_job(session: Session, job: Job) -> list[WebhookDeliveryOut]:
    deliveries = repository.deliveries_for_job(session, job.id)
    attempts = repository.attempts_for(session, [delivery.id for delivery in deliveries])
    endpoints = {
        delivery.endpoint_id: session.get(WebhookEndpoint, delivery.endpoint_id) for delivery in deliveries
    }
    result = []
    for delivery in deliveries:
        endpoint = endpoints[delivery.endpoint_id]
        result.append(
            WebhookDeliveryOut(
                id=message_id(delivery.id),
                event_type=delivery.event_type,
                url=endpoint.url if endpoint else "",
                status=delivery.status,
                attempt_count=delivery.attempt_count,
                next_attempt_at=delivery.next_attempt_at,
                last_status_code=delivery.last_status_code,
                last_error=delivery.last_error,
                delivered_at=delivery.delivered_at,
                created_at=delivery.created_at,
                attempts=[
                    WebhookAttemptOut(
                        number=attempt.number,
                        status_code=attempt.status_code,
                        error=attempt.error,
                        duration_ms=attempt.duration_ms,
                        created_at=attempt.created_at,
                    )
                    for attempt in attempts
                    if attempt.delivery_id == delivery.id
                ],
            )
        )
    return result


def redeliver(
    session: Session, key: AuthenticatedKey, job: Job, delivery_ref: str, url: str | None = None
) -> WebhookDeliveryOut:
    """Send a delivery again now, whatever its state; re-enables an endpoint a 410 disabled. With `url`,
    this delivery (and its later retries) go to that URL instead; the same message id and payload."""
    try:
        delivery_id = uuid.UUID(delivery_ref.removeprefix("msg_"))
    except ValueError as error:
        raise not_found("webhook delivery") from error
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.job_id != job.id:
        raise not_found("webhook delivery")
    if url is not None:
        validate_url(url)
        delivery.endpoint_id = ensure_endpoint(session, key, url).id
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint is not None and endpoint.disabled_at is not None:
        endpoint.disabled_at = None
        endpoint.disabled_reason = None
    now = datetime.now(UTC)
    # A retry still scheduled keeps its time and place: this send is an extra one.
    manual = (
        delivery.status == "pending"
        and delivery.next_attempt_at is not None
        and delivery.next_attempt_at > now
    )
    if not manual:
        delivery.status = "pending"
        delivery.next_attempt_at = now
    session.flush()
    enqueue_after_commit(
        session,
        PendingTask(
            TASK_DELIVER_WEBHOOK, (str(delivery.id), "manual" if manual else "scheduled"), QUEUE_WEBHOOKS
        ),
    )
    return next(item for item in list_for_job(session, job) if item.id == message_id(delivery.id))
