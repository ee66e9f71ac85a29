from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import ApiKey


def by_prefix(session: Session, prefix: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first()


def active_by_name(session: Session, name: str) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))))


def by_id(session: Session, key_id: uuid.UUID) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def touch_last_used(session: Session, key_id: uuid.UUID, now: datetime, resolution: timedelta) -> None:
    # Conditional, so a busy key writes at most once per `resolution` instead of on every request.
    session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .where((ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < now - resolution))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
