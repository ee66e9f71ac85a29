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
    WAITING = "waiting"  # planned: queued once the job's work of the kind before it is done


class SegmentKind(enum.StrEnum):
    """What a row's task does, in the order a job runs them: every render, every encode, then the join."""

    RENDER = "render"  # render one segment on a GPU worker and store its patch
    ENCODE = "encode"  # encode one chunk of output frames on a CPU worker (the whole output when it is one)
    JOIN = "join"  # join the encoded chunks with the AAC track into the output (when there are several)


class JobSegment(Base):
    """One task's work of a fanned-out job's plan (`kind`: a segment to render, a chunk to encode, the join),
    run by whichever worker takes it: (waiting →) queued → running → done | failed | canceled, and back to
    queued when its worker is lost."""

    __tablename__ = "job_segments"
    __table_args__ = (Index("ix_job_segments_status_updated", "status", "updated_at"),)

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True, default=SegmentKind.RENDER)
    index: Mapped[int] = mapped_column(primary_key=True)
    # The job attempt that planned it: tasks of an older attempt's plan change nothing.
    job_attempt: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default=SegmentStatus.QUEUED)
    frame_count: Mapped[int]
    attempts: Mapped[int] = mapped_column(default=0)
    worker: Mapped[str | None] = mapped_column(String(200))  # host:pid of the run that holds or held it
    render_seconds: Mapped[float | None]  # the task's own work: rendering a segment, encoding a chunk
    frames_rendered: Mapped[int | None]  # a rendered segment: its frames, when the renderer changed any
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    heartbeat_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
