"""SQL for preflights: every state change is a conditional UPDATE, as for jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, and_, func, or_, select, update
from sqlalchemy.orm import Session

from app.models import JobStatus, Preflight
from app.models.base import utcnow


def get_for_account(session: Session, account_id: uuid.UUID, preflight_id: uuid.UUID) -> Preflight | None:
    statement = select(Preflight).where(Preflight.id == preflight_id, Preflight.account_id == account_id)
    return session.scalars(statement).first()


def count_active_for_key(
    session: Session, account_id: uuid.UUID, api_key_id: uuid.UUID, created_after: datetime
) -> int:
    """Unfinished preflights of a key created after `created_after` (older ones are taken as lost)."""
    statement = select(func.count()).where(
        Preflight.account_id == account_id,  # the (account_id, created_at) index narrows the scan
        Preflight.created_at > created_after,
        Preflight.api_key_id == api_key_id,
        Preflight.status.in_((JobStatus.QUEUED, JobStatus.PROCESSING)),
    )
    return int(session.scalar(statement) or 0)


def _changed(result: Any) -> bool:
    assert isinstance(result, CursorResult)
    return bool(result.rowcount)


def claim(session: Session, preflight_id: uuid.UUID, stale_before: datetime) -> int | None:
    """queued (or processing, abandoned before `stale_before` by a worker that died) → processing.

    Returns this run's attempt number, or None when the preflight is done or another run has it.
    """
    now = utcnow()
    result = session.execute(
        update(Preflight)
        .where(
            Preflight.id == preflight_id,
            or_(
                Preflight.status == JobStatus.QUEUED,
                and_(Preflight.status == JobStatus.PROCESSING, Preflight.updated_at < stale_before),
            ),
        )
        .values(status=JobStatus.PROCESSING, attempts=Preflight.attempts + 1, started_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if not _changed(result):
        return None
    return int(session.scalar(select(Preflight.attempts).where(Preflight.id == preflight_id)) or 0)


def finish(session: Session, preflight_id: uuid.UUID, attempt: int, status: JobStatus, **values: Any) -> bool:
    """Only the run holding the current attempt may finish the preflight."""
    now = utcnow()
    result = session.execute(
        update(Preflight)
        .where(
            Preflight.id == preflight_id,
            Preflight.status == JobStatus.PROCESSING,
            Preflight.attempts == attempt,
        )
        .values(status=status, finished_at=now, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)
