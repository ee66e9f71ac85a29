from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UUIDPrimaryKey


class MediaFile(UUIDPrimaryKey, Timestamps, Base):
    """Media a customer uploaded, usable as a job's video or audio input."""

    __tablename__ = "files"

    account_id: Mapped[uuid.UUID] = mapped_column(index=True)
    object_key: Mapped[str] = mapped_column(String(300))
    filename: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    # Set by DELETE /v1/files/{id}: the object is gone, the row stays for the jobs that name it.
    deleted_at: Mapped[datetime | None]
