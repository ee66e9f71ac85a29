from __future__ import annotations

import uuid

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
