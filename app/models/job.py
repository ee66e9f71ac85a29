from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, JSONType, Timestamps, UUIDPrimaryKey, utcnow


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)
ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.PROCESSING)


class Job(UUIDPrimaryKey, Timestamps, Base):
    """One dub request and its state machine: queued → processing → succeeded | failed | canceled."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_account_created", "account_id", "created_at", "id"),
        Index("ix_jobs_status_updated", "status", "updated_at"),
        Index("ix_jobs_api_key_status", "api_key_id", "status"),
    )

    account_id: Mapped[uuid.UUID]
    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"))
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.QUEUED)
    video_url: Mapped[str | None] = mapped_column(Text)
    audio_url: Mapped[str | None] = mapped_column(Text)
    video_file_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("files.id"))
    audio_file_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("files.id"))
    sync_mode: Mapped[str] = mapped_column(String(20), default="auto")
    job_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    webhook_endpoint_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("webhook_endpoints.id"))
    # As given, echoed on the job; deliveries go to `webhook_endpoint_id`.
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_events: Mapped[list[str]] = mapped_column(default=list)
    max_duration_s: Mapped[float] = mapped_column(default=0.0)
    # Who to dub (`[{track_id} | {point} | {boxes}]`, None: whoever speaks) and what frames without a face do.
    speakers: Mapped[list[Any] | None] = mapped_column(JSONType)
    on_no_face: Mapped[str] = mapped_column(String(20), default="passthrough", server_default="passthrough")
    # The model that renders the dub (`GET /v1/models`); null on jobs from before models could be chosen.
    model: Mapped[str | None] = mapped_column(String(200))

    progress_stage: Mapped[str | None] = mapped_column(String(40))
    progress_percent: Mapped[float] = mapped_column(default=0.0)
    # Bytes of the inputs fetched so far: progress even when a server declares no length.
    progress_bytes: Mapped[int | None] = mapped_column(BigInteger)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_retryable: Mapped[bool] = mapped_column(default=False)
    output_key: Mapped[str | None] = mapped_column(String(300))
    output_size: Mapped[int | None] = mapped_column(BigInteger)
    output_duration_s: Mapped[float | None]
    report: Mapped[dict[str, Any] | None]
    analysis: Mapped[dict[str, Any] | None]  # the scene analysis summary, when analysis ran
    frames_rendered: Mapped[int | None]
    # Input facts (size, duration, frame rate…), stored once probed; seconds per engine stage, on success.
    media: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    stage_seconds: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    attempts: Mapped[int] = mapped_column(default=0)
    cancel_requested_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class JobEvent(UUIDPrimaryKey, Base):
    """Every state change and failure of a job, in order."""

    __tablename__ = "job_events"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
