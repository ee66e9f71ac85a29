from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.dubs.schemas import DubError, DubInput, error_of, input_of
from app.models import Preflight


class PreflightOut(BaseModel):
    id: uuid.UUID
    object: Literal["dub_preflight"] = "dub_preflight"
    status: str = Field(description="`queued`, `processing`, `succeeded` or `failed`.")
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    sync_mode: str
    input: DubInput
    speakers: list[dict[str, Any]] | None
    on_no_face: str
    metadata: dict[str, Any]
    webhook_url: str | None = Field(description="Receives `preflight.succeeded` or `preflight.failed`.")
    report: dict[str, Any] | None = Field(
        description="When succeeded: `input` (probe facts), `analysis` (shots, face tracks, speaker "
        "timeline, frames without a face), `plan` (the sync_mode that applies, output frames and seconds), "
        "`segment_count`, `estimate` (render and processing time, measured on this deployment's last "
        "succeeded dubs where it has any; the `note` says what is measured and what assumed) and `frame` "
        "(the representative frame: `index`, `width`, `height` in display pixels, `faces [{track_id, box "
        "[x0, y0, x1, y1], dubbed, speaking}]`; its JPEG is at `GET /v1/dubs/preflight/{id}/frame`)."
    )
    error: DubError | None


def preflight_out(preflight: Preflight) -> PreflightOut:
    return PreflightOut(
        id=preflight.id,
        status=preflight.status,
        created_at=preflight.created_at,
        updated_at=preflight.updated_at,
        started_at=preflight.started_at,
        finished_at=preflight.finished_at,
        sync_mode=preflight.sync_mode,
        input=input_of(preflight),
        speakers=preflight.speakers,
        on_no_face=preflight.on_no_face,
        metadata=preflight.preflight_metadata,
        webhook_url=preflight.webhook_url,
        report=preflight.report,
        error=error_of(preflight),
    )
