from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.models import MediaFile


def get_for_account(session: Session, account_id: uuid.UUID, file_id: uuid.UUID) -> MediaFile | None:
    statement = select(MediaFile).where(
        MediaFile.id == file_id, MediaFile.account_id == account_id, MediaFile.deleted_at.is_(None)
    )
    return session.scalars(statement).first()


def list_for_account(
    session: Session, account_id: uuid.UUID, *, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[MediaFile]:
    statement = select(MediaFile).where(MediaFile.account_id == account_id, MediaFile.deleted_at.is_(None))
    if after is not None:
        created_at, file_id = after
        statement = statement.where(
            or_(
                MediaFile.created_at < created_at,
                and_(MediaFile.created_at == created_at, MediaFile.id < file_id),
            )
        )
    return list(
        session.scalars(statement.order_by(MediaFile.created_at.desc(), MediaFile.id.desc()).limit(limit))
    )
