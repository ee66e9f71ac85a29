"""The JSON body of `POST /v1/dubs` and `POST /v1/dubs/preflight`, shared by the sync and async clients."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from redub_client.types import MetadataValue, Speaker


def new_idempotency_key() -> str:
    return f"redub-python-{uuid.uuid4()}"


def dub_body(
    media: Mapping[str, str],
    *,
    sync_mode: str | None,
    webhook_url: str | None,
    webhook_events: Sequence[str] | None,
    speakers: Sequence[Speaker | Mapping[str, Any]] | None,
    on_no_face: str | None,
    model: str | None,
    metadata: Mapping[str, MetadataValue] | None,
) -> dict[str, Any]:
    """Only what the caller gave, so the server's defaults apply to the rest."""
    body: dict[str, Any] = dict(media)
    optional: dict[str, Any] = {
        "sync_mode": sync_mode,
        "webhook_url": webhook_url,
        "webhook_events": list(webhook_events) if webhook_events is not None else None,
        "on_no_face": on_no_face,
        "model": model,
        "metadata": dict(metadata) if metadata is not None else None,
    }
    if speakers is not None:
        optional["speakers"] = [
            item.model_dump(mode="json", exclude_none=True) if isinstance(item, Speaker) else dict(item)
            for item in speakers
        ]
    body.update({name: value for name, value in optional.items() if value is not None})
    return body
