from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UUIDPrimaryKey


class IdempotencyKey(UUIDPrimaryKey, Timestamps, Base):
    """The first answer to a request with an `Idempotency-Key`, replayed for the same key and body."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("account_id", "key", name="uq_idempotency_keys_account_key"),)

    account_id: Mapped[uuid.UUID]
    key: Mapped[str] = mapped_column(String(255))
    # "POST /v1/dubs": a key reused on another endpoint is told apart from one reused with another body.
    endpoint: Mapped[str] = mapped_column(String(200), server_default="")
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response_body: Mapped[dict[str, Any]]
    expires_at: Mapped[datetime] = mapped_column(index=True)
