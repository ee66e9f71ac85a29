from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UUIDPrimaryKey


class ApiKey(UUIDPrimaryKey, Timestamps, Base):
    """An API key: looked up by its visible prefix, checked against a keyed hash of the whole key."""

    __tablename__ = "api_keys"

    account_id: Mapped[uuid.UUID] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    # Webhook signing secrets must be readable to sign; the previous one signs too until it expires.
    webhook_secret: Mapped[str] = mapped_column(String(200))
    previous_webhook_secret: Mapped[str | None] = mapped_column(String(200))
    previous_webhook_secret_expires_at: Mapped[datetime | None]
    rate_limit_per_minute: Mapped[int]  # 0 = unlimited
    max_concurrent_jobs: Mapped[int]  # 0 = unlimited
    max_duration_s: Mapped[float]  # 0 = unlimited
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
