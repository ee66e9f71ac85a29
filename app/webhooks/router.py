from __future__ import annotations

import uuid

from fastapi import APIRouter

from app.core.errors import PROBLEM_RESPONSES
from app.dubs import service as dubs
from app.keys.dependencies import CurrentKey, SessionDep
from app.webhooks import service
from app.webhooks.schemas import WebhookDeliveryList, WebhookDeliveryOut

router = APIRouter(
    prefix="/v1/dubs/{dub_id}/webhook_deliveries", tags=["webhooks"], responses=PROBLEM_RESPONSES
)


@router.get("", response_model=WebhookDeliveryList)
def list_deliveries(dub_id: uuid.UUID, key: CurrentKey, session: SessionDep) -> WebhookDeliveryList:
    """Every webhook event sent for this dub, with each attempt's outcome."""
    job = dubs.get(session, key, dub_id)
    return WebhookDeliveryList(data=service.list_for_job(session, job))


@router.post("/{delivery_id}/redeliver", status_code=202, response_model=WebhookDeliveryOut)
def redeliver(
    dub_id: uuid.UUID, delivery_id: str, key: CurrentKey, session: SessionDep
) -> WebhookDeliveryOut:
    """Send one webhook event again now."""
    job = dubs.get(session, key, dub_id)
    return service.redeliver(session, job, delivery_id)
