from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import MediaFile


def get_for_account(session: Session, account_id: uuid.UUID, file_id: uuid.UUID) -> MediaFile | None:
    statement = select(MediaFile).where(MediaFile.id == file_id, MediaFile.account_id == account_id)
    return session.scalars(statement).first()
