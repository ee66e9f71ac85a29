"""Retention: outputs, stored inputs, uploads and preflight frames are removed from object storage
`retention_days` after the dub or preflight ended (or the file was uploaded); the rows stay, so the API can
say the output expired."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from app.core.config import get_settings
from app.core.db import new_session
from app.core.storage import get_storage, input_key, output_key
from app.models import Job, MediaFile, Preflight
from app.models.base import utcnow

logger = logging.getLogger(__name__)
_BATCH = 500


def sweep_expired() -> int:
    """Remove what has outlived its retention; returns how many dubs, files and preflights were swept."""
    settings = get_settings()
    cutoff = utcnow() - timedelta(days=settings.retention_days)
    storage = get_storage()
    swept = 0
    with new_session() as session:
        jobs = session.scalars(
            select(Job).where(Job.finished_at < cutoff, Job.output_key.is_not(None)).limit(_BATCH)
        ).all()
        for job in jobs:
            for key in (output_key(job.id), input_key(job.id, "video"), input_key(job.id, "audio")):
                storage.delete(key)
            job.output_key = None
        files = session.scalars(
            select(MediaFile)
            .where(MediaFile.created_at < cutoff, MediaFile.deleted_at.is_(None))
            .limit(_BATCH)
        ).all()
        now = utcnow()
        for media in files:
            storage.delete(media.object_key)
            media.deleted_at = now
        preflights = session.scalars(
            select(Preflight)
            .where(Preflight.finished_at < cutoff, Preflight.frame_key.is_not(None))
            .limit(_BATCH)
        ).all()
        for preflight in preflights:
            assert preflight.frame_key is not None
            storage.delete(preflight.frame_key)
            preflight.frame_key = None
        session.commit()
        swept = len(jobs) + len(files) + len(preflights)
    if swept:
        logger.info(
            "retention sweep", extra={"dubs": len(jobs), "files": len(files), "preflights": len(preflights)}
        )
    return swept
