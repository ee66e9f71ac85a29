from __future__ import annotations

import uuid

from fastapi import APIRouter

from app.core.errors import COMMON_PROBLEMS
from app.dubs import service as dubs
from app.keys.dependencies import CurrentKey, SessionDep
from app.webhooks import service
from app.webhooks.schemas import RedeliverRequest, WebhookDeliveryList, WebhookDeliveryOut

router = APIRouter(
    prefix="/v1/dubs/{dub_id}/webhook_deliveries", tags=["webhooks"], responses=COMMON_PROBLEMS
)


@router.get("", response_model=WebhookDeliveryList)
def list_deliveries(dub_id: uuid.UUID, key: CurrentKey, session: SessionDep) -> WebhookDeliveryList:
    """Every webhook event sent for this dub, with each attempt's outcome."""
    job = dubs.get(session, key, dub_id)
    return WebhookDeliveryList(data=service.list_for_job(session, job))


@router.post("/{delivery_id}/redeliver", status_code=202, response_model=WebhookDeliveryOut)
def redeliver(
    dub_id: uuid.UUID,
    delivery_id: str,
    key: CurrentKey,
    session: SessionDep,
    body: RedeliverRequest | None = None,
) -> WebhookDeliveryOut:
    """Send one webhook event again now, optionally to a new URL (`{"url": ...}`)."""
    job = dubs.get(session, key, dub_id)
    return service.redeliver(session, key, job, delivery_id, url=body.url if body else None)
