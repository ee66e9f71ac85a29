"""One preflight: claim it, fetch its inputs, probe, analyse and plan (no render), store the report.

Safe to run twice: the claim is a conditional UPDATE and only the run holding the current attempt may finish.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.config import get_settings
from app.core.db import new_session, read_connection
from app.core.fetch import FetchError
from app.core.storage import get_storage, preflight_frame_key
from app.dubs import repository as dubs
from app.models import JobStatus, MediaFile, Preflight
from app.models.base import utcnow
from app.preflights import repository
from app.webhooks import service as webhooks
from worker.engine.errors import EngineError
from worker.tasks.inputs import engine_options, obtain

if TYPE_CHECKING:
    from worker.engine.preflight import Costs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreflightSpec:
    id: uuid.UUID
    attempt: int
    video_url: str | None
    audio_url: str | None
    video_file_key: str | None
    audio_file_key: str | None
    sync_mode: str
    speakers: list[Any] | None
    on_no_face: str
    max_duration_s: float


def _file_key(session: Any, file_id: uuid.UUID | None) -> str | None:
    media = session.get(MediaFile, file_id) if file_id is not None else None
    return media.object_key if media is not None else None


def _claim(preflight_id: uuid.UUID) -> PreflightSpec | None:
    # A run whose worker died leaves the row `processing`; the redelivered task takes it over once stale.
    stale_before = utcnow() - timedelta(seconds=get_settings().stale_processing_after_s)
    with new_session() as session:
        attempt = repository.claim(session, preflight_id, stale_before)
        if attempt is None:
            session.rollback()
            return None
        preflight = session.get(Preflight, preflight_id)
        assert preflight is not None
        spec = PreflightSpec(
            id=preflight.id,
            attempt=attempt,
            video_url=preflight.video_url,
            audio_url=preflight.audio_url,
            video_file_key=_file_key(session, preflight.video_file_id),
            audio_file_key=_file_key(session, preflight.audio_file_id),
            sync_mode=preflight.sync_mode,
            speakers=preflight.speakers,
            on_no_face=preflight.on_no_face,
            max_duration_s=preflight.max_duration_s,
        )
        session.commit()
        return spec


def _finish(spec: PreflightSpec, status: JobStatus, **values: Any) -> None:
    with new_session() as session:
        if not repository.finish(session, spec.id, spec.attempt, status, **values):
            session.rollback()
            logger.warning("preflight moved on without this run", extra={"preflight_id": str(spec.id)})
            return
        preflight = session.get(Preflight, spec.id)
        if preflight is not None:
            webhooks.emit_preflight(session, preflight, f"preflight.{status.value}")
        session.commit()


def _fail(spec: PreflightSpec, code: str, message: str, retryable: bool) -> str:
    _finish(spec, JobStatus.FAILED, error_code=code, error_message=message, error_retryable=retryable)
    logger.info("preflight failed", extra={"preflight_id": str(spec.id), "code": code})
    return "failed"


def _measured_costs(model: str) -> Costs:
    """Render and processing rates from this deployment's last succeeded dubs; the setting before any."""
    from app.dubs import eta
    from worker.engine.preflight import Costs

    with read_connection() as connection:
        rates = dubs.recent_render_rates(connection, model, eta.RECENT_DUBS)
    history = eta.recent_history()
    return Costs(
        seconds_per_frame=statistics.median(rates) if rates else get_settings().render_seconds_per_frame,
        frames_measured_over=len(rates),
        seconds_per_video_second=history.median_s_per_video_s,
        dubs_measured_over=history.dubs,
    )


def run_preflight(preflight_id: uuid.UUID) -> str:
    """Run one preflight if it is still queued. Returns what happened, for logs and tests."""
    from worker.engine.preflight import preflight

    settings = get_settings()
    spec = _claim(preflight_id)
    if spec is None:
        logger.info("preflight not claimable", extra={"preflight_id": str(preflight_id)})
        return "skipped"
    with tempfile.TemporaryDirectory(
        prefix=f"redub-preflight-{preflight_id}-", dir=settings.work_dir or None
    ) as directory:
        workdir = Path(directory)
        try:
            video = obtain("video", spec.video_url, spec.video_file_key, workdir)
            audio = obtain("audio", spec.audio_url, spec.audio_file_key, workdir)
            # The model dubs get by default, so the estimate is about the dub this request would get.
            options = engine_options(
                spec.sync_mode,
                spec.max_duration_s,
                spec.on_no_face,
                spec.speakers,
                model=settings.default_model or None,
            )
            frame = workdir / "frame.jpg"
            costs = _measured_costs(options.model or options.renderer)
            report = preflight(video, audio, options, costs, frame_path=frame)
            # Stored before the row names it: `GET …/frame` never finds a key without its image.
            frame_key = preflight_frame_key(spec.id)
            get_storage().upload_file(frame_key, frame, "image/jpeg")
        except EngineError as error:
            return _fail(spec, error.code, error.message, retryable=False)
        except FetchError as error:
            return _fail(spec, error.code, error.message, retryable=error.retryable)
        except Exception:
            logger.exception("preflight broke", extra={"preflight_id": str(preflight_id)})
            return _fail(spec, "internal_error", "The preflight failed on our side.", retryable=True)
    _finish(spec, JobStatus.SUCCEEDED, report=report, frame_key=frame_key)
    logger.info("preflight succeeded", extra={"preflight_id": str(preflight_id)})
    return "succeeded"
