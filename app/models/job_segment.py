from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class SegmentStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"  # the job ended (failed, canceled, past its deadline) before it ran or finished


class JobSegment(Base):
    """One segment of a fanned-out job's plan, rendered by whichever GPU worker takes it:
    queued → running → done | failed | canceled, and back to queued when its worker is lost."""

    __tablename__ = "job_segments"
    __table_args__ = (Index("ix_job_segments_status_updated", "status", "updated_at"),)

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    index: Mapped[int] = mapped_column(primary_key=True)
    # The job attempt that planned it: tasks of an older attempt's plan change nothing.
    job_attempt: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default=SegmentStatus.QUEUED)
    frame_count: Mapped[int]
    attempts: Mapped[int] = mapped_column(default=0)
    worker: Mapped[str | None] = mapped_column(String(200))  # host:pid of the run that holds or held it
    render_seconds: Mapped[float | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    heartbeat_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
