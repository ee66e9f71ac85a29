"""The webhook events as OpenAPI 3.1 `webhooks`: what Redub POSTs to a dub's `webhook_url`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field

from app.dubs.schemas import DubOut
from app.preflights.schemas import PreflightOut

EVENTS = {
    "dub.started": "A worker took the dub (only when listed in `webhook_events`).",
    "dub.progress": "Progress, at most every `REDUB_WEBHOOK_PROGRESS_INTERVAL_S` (only when listed).",
    "dub.succeeded": "The dub is done; `data.output.url` downloads it.",
    "dub.failed": "The dub failed; `data.error` says why and whether a retry can help.",
    "dub.canceled": "The dub was canceled.",
    "preflight.succeeded": "A preflight that named a `webhook_url` has its report (`data` is the preflight).",
    "preflight.failed": "A preflight that named a `webhook_url` failed (`data.error`).",
}


class WebhookEvent(BaseModel):
    """Signed as Standard Webhooks: headers `webhook-id`, `webhook-timestamp`, `webhook-signature`."""

    type: Literal[
        "dub.started",
        "dub.progress",
        "dub.succeeded",
        "dub.failed",
        "dub.canceled",
        "preflight.succeeded",
        "preflight.failed",
    ]
    timestamp: datetime
    data: DubOut | PreflightOut = Field(
        description="The dub (or preflight) as its `GET` shows it when the event happened."
    )


def register_webhook_events(app: FastAPI) -> None:
    for name, summary in EVENTS.items():

        def event(body: WebhookEvent) -> None:
            """Answer 2xx within 10 s; anything else is retried on the documented schedule."""

        app.webhooks.post(name, summary=summary, status_code=204)(event)
