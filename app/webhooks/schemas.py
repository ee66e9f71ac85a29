from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class WebhookAttemptOut(BaseModel):
    number: int
    status_code: int | None
    error: str | None
    duration_ms: int
    created_at: datetime


class WebhookDeliveryOut(BaseModel):
    id: str
    object: Literal["webhook_delivery"] = "webhook_delivery"
    event_type: str
    url: str
    status: str
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    attempts: list[WebhookAttemptOut]


class RedeliverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, max_length=4096, description="Send to this URL instead (and retry there).")


class WebhookDeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookDeliveryOut]


def message_id(delivery_id: uuid.UUID) -> str:
    return f"msg_{delivery_id.hex}"
