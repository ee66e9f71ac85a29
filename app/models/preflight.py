from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, JSONType, Timestamps, UUIDPrimaryKey
from app.models.job import JobStatus


class Preflight(UUIDPrimaryKey, Timestamps, Base):
    """A dry run of a dub request: inputs fetched, probed, analysed and planned, nothing rendered or billed.

    Statuses are a subset of a job's: queued → processing → succeeded | failed.
    """

    __tablename__ = "preflights"
    __table_args__ = (Index("ix_preflights_account_created", "account_id", "created_at", "id"),)

    account_id: Mapped[uuid.UUID]
    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"))
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.QUEUED)
    video_url: Mapped[str | None] = mapped_column(Text)
    audio_url: Mapped[str | None] = mapped_column(Text)
    video_file_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("files.id"))
    audio_file_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("files.id"))
    sync_mode: Mapped[str] = mapped_column(String(20), default="auto")
    speakers: Mapped[list[Any] | None] = mapped_column(JSONType)
    on_no_face: Mapped[str] = mapped_column(String(20), default="passthrough")
    max_duration_s: Mapped[float] = mapped_column(default=0.0)
    # Echoed, and where `preflight.succeeded` / `preflight.failed` go.
    preflight_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_endpoint_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("webhook_endpoints.id"))

    report: Mapped[dict[str, Any] | None]
    # The stored JPEG of the report's representative frame; None once retention deleted it.
    frame_key: Mapped[str | None] = mapped_column(String(300))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_retryable: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
