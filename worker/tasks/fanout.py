"""One dub across many workers (REDUB_FANOUT): the job's own task plans it, one task per segment renders it
on the `gpu` queue, and one task assembles the output on the default queue.

The plan (JSON), the analysis and each segment's patch live in object storage under the job's prefix; the
segment rows in SQL say which are done. A patch's key and bytes depend only on the job and the segment, so a
task delivered twice writes the same object, and only the run holding a segment may mark it done. The last
segment to finish starts the assembly, exactly once (the job row is locked while segments are counted).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from app.core import metrics
from app.core.config import get_settings
from app.core.db import new_session
from app.core.queue import (
    QUEUE_DEFAULT,
    QUEUE_GPU,
    TASK_ASSEMBLE,
    TASK_RENDER_SEGMENT,
    PendingTask,
    enqueue_after_commit,
)
from app.core.storage import get_storage, input_key
from app.dubs import segment_repository as segments
from app.models import Job, JobStatus, SegmentStatus
from app.models.base import utcnow
from app.webhooks import repository as webhook_repository
from app.webhooks import service as webhooks
from worker.engine.errors import CANCELED, DEADLINE_EXCEEDED, EngineError
from worker.tasks.input_cache import cached_input
from worker.tasks.processing import (
    JobReporter,
    JobSpec,
    cancel,
    fail_job,
    guarded,
    media_recorder,
    options_of,
    spec_of,
    succeed,
)

if TYPE_CHECKING:
    from worker.engine.fanout import JobPlan
    from worker.engine.pipeline import DubOptions
    from worker.engine.probe import VideoInfo

logger = logging.getLogger(__name__)

PLAN_NAME = "plan.json"
ANALYSIS_NAME = "analysis.npz"


def work_key(job_id: uuid.UUID, job_attempt: int, name: str) -> str:
    """Where a fanned-out job attempt keeps its plan and segment patches (removed once the dub ends). Per
    attempt: a late segment of an earlier attempt, whose inputs may have been fetched anew since, never
    writes over this one's patches."""
    return f"jobs/{job_id}/work/{job_attempt}/{name}"


def remove_work(job_id: uuid.UUID, job_attempt: int, indices: list[int]) -> None:
    """Best effort: a dub that ended keeps no plan, analysis or patches (leftovers only cost storage)."""
    storage = get_storage()
    try:
        for name in [PLAN_NAME, ANALYSIS_NAME, *(patch_name(index) for index in indices)]:
            storage.delete(work_key(job_id, job_attempt, name))
    except Exception:
        logger.exception("could not remove the job's work objects", extra={"job_id": str(job_id)})


def patch_name(index: int) -> str:
    return f"segments/{index:05d}.npz"


def segment_task(
    job_id: uuid.UUID, job_attempt: int, index: int, countdown: float | None = None, priority: int = 0
) -> PendingTask:
    # One id per segment and job attempt: a cancel revokes the segment by it, whichever send is queued.
    task_id = f"segment-{job_id}-{job_attempt}-{index}"
    return PendingTask(
        TASK_RENDER_SEGMENT,
        (str(job_id), str(job_attempt), str(index)),
        QUEUE_GPU,
        countdown,
        task_id,
        priority,
    )


def segment_priority(rank: int) -> int:
    """The broker priority of an account's `rank`-th queued segment (0 first). Kombu's Redis transport
    keeps one list per priority step (0, 3, 6, 9) and workers pop the lists in that order, so a small dub
    of an account with little queued overtakes the tail of another account's long one."""
    band = get_settings().segment_priority_band
    for priority, limit in ((0, band), (3, 4 * band), (6, 16 * band)):
        if rank < limit:
            return priority
    return 9


def send_segment(
    session: Session, job_id: uuid.UUID, job_attempt: int, index: int, countdown: float | None = None
) -> None:
    """Queue a segment's task (after commit) at the priority its place in the account's backlog gives."""
    priority = segment_priority(segments.queued_ahead(session, job_id, index))
    enqueue_after_commit(session, segment_task(job_id, job_attempt, index, countdown, priority))


def assembly_task(job_id: uuid.UUID, job_attempt: int) -> PendingTask:
    return PendingTask(TASK_ASSEMBLE, (str(job_id), str(job_attempt)), QUEUE_DEFAULT)


# --- planning (the job's own task, after it fetched the inputs) ---------------------------------------


def plan_and_dispatch(
    spec: JobSpec, video: Path, audio: Path, options: DubOptions, reporter: JobReporter, workdir: Path
) -> str:
    """Plan the dub, store the plan and send one task per segment to render (or the assembly at once)."""
    from worker.engine.fanout import plan_job

    analysis_path = workdir / ANALYSIS_NAME
    plan = plan_job(
        video,
        audio,
        options,
        analysis_path,
        progress=reporter.progress,
        should_cancel=reporter.should_cancel,
        on_probed=media_recorder(spec, video, audio),
    )
    storage = get_storage()
    document = {
        "plan": plan.to_json(),
        "inputs": {
            "video": _stored_input(spec, "video", spec.video_url, spec.video_file_key, video),
            "audio": _stored_input(spec, "audio", spec.audio_url, spec.audio_file_key, audio),
        },
    }
    plan_path = workdir / PLAN_NAME
    plan_path.write_text(json.dumps(document))
    try:
        if analysis_path.exists():
            storage.upload_file(
                work_key(spec.id, spec.attempt, ANALYSIS_NAME), analysis_path, "application/octet-stream"
            )
        storage.upload_file(work_key(spec.id, spec.attempt, PLAN_NAME), plan_path, "application/json")
        if reporter.should_cancel():
            raise EngineError(CANCELED, "the dub was canceled")
    except Exception:
        remove_work(spec.id, spec.attempt, [])
        raise
    frame_counts = {index: plan.segments[index].frame_count for index in plan.to_render}
    # From here the segment rows say whether the job is alive; a late beat must not overwrite the stage.
    reporter.close()
    with new_session() as session:
        segments.replace_plan(session, spec.id, spec.attempt, frame_counts)
        stage = segments.STAGE_RENDERING if frame_counts else segments.STAGE_ASSEMBLING
        if not segments.set_stage(session, spec.id, spec.attempt, stage, 0.0, from_stage=None):
            session.rollback()
            remove_work(spec.id, spec.attempt, [])  # the job ended (or moved on) while it was planned
            return "lost"
        ahead = segments.queued_ahead(session, spec.id, 0)  # the account's other jobs' queued segments
        for rank, index in enumerate(frame_counts, start=ahead):
            priority = segment_priority(rank)
            enqueue_after_commit(session, segment_task(spec.id, spec.attempt, index, priority=priority))
        if not frame_counts:
            enqueue_after_commit(session, assembly_task(spec.id, spec.attempt))
        session.commit()
    logger.info(
        "job planned",
        extra={"job_id": str(spec.id), "segments": len(plan.segments), "to_render": len(frame_counts)},
    )
    return "planned"


def _stored_input(
    spec: JobSpec, name: str, url: str | None, file_key: str | None, local: Path
) -> dict[str, str]:
    """Where the workers find an input (a fetched one was kept under the job's prefix) and its hash."""
    key = input_key(spec.id, name) if url is not None else file_key
    assert key is not None
    with local.open("rb") as stream:
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    return {"key": key, "sha256": digest}


# --- one segment (gpu queue) ------------------------------------------------------------------------


class SegmentBeat:
    """Keeps a running segment's row fresh and watches for a cancel or the deadline meanwhile."""

    def __init__(self, job_id: uuid.UUID, job_attempt: int, index: int, attempt: int) -> None:
        settings = get_settings()
        self.key = (job_id, job_attempt, index, attempt)
        self.interval_s = max(
            0.2, min(settings.stale_processing_after_s / 4, settings.cancel_poll_interval_s)
        )
        self.stop = threading.Event()
        self.reason: str | None = None  # why the job must stop: canceled, deadline, or lost
        self.thread = threading.Thread(target=self._beat, name=f"segment-{job_id}-{index}", daemon=True)

    def __enter__(self) -> SegmentBeat:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def _beat(self) -> None:
        job_id = self.key[0]
        while not self.stop.wait(self.interval_s):
            try:
                with new_session() as session:
                    if not segments.heartbeat(session, *self.key):
                        self.reason = self.reason or "lost"
                    job = session.get(Job, job_id)
                    if job is not None:
                        self.reason = self.reason or stop_reason(job)
                    session.commit()
            except Exception:
                logger.exception("segment heartbeat failed", extra={"job_id": str(job_id)})


def stop_reason(job: Job) -> str | None:
    """Why a processing job must stop now: a cancel was asked for, or its deadline passed."""
    if job.cancel_requested_at is not None:
        return CANCELED
    deadline_s = get_settings().job_deadline_s
    if (
        deadline_s > 0
        and job.started_at is not None
        and utcnow() - job.started_at > timedelta(seconds=deadline_s)
    ):
        return DEADLINE_EXCEEDED
    return None


def stop_job(spec: JobSpec, reason: str) -> str:
    """End the job for `reason` (once, whoever sees it first) and revoke its queued segments."""
    if reason == CANCELED:
        ended = cancel(spec)
    elif reason == DEADLINE_EXCEEDED:
        deadline_s = get_settings().job_deadline_s
        ended = fail_job(
            spec, DEADLINE_EXCEEDED, f"The dub did not finish within {deadline_s:g} s.", retryable=True
        )
    else:
        return "lost"
    if ended:
        end_segments(spec.id, spec.attempt, reason)
    return reason


def end_segments(job_id: uuid.UUID, job_attempt: int, code: str) -> None:
    """The job ended: its unfinished segments are closed, its work objects removed, and the queued segment
    tasks revoked (a revoked task that starts anyway finds the job over and does nothing)."""
    from worker.celery_app import celery_app

    with new_session() as session:
        indices = [segment.index for segment in segments.unfinished(session, job_id)]
        planned = segments.indices(session, job_id, job_attempt)
        segments.close_unfinished(session, job_id, code)
        session.commit()
    remove_work(job_id, job_attempt, planned)
    if indices:
        try:
            celery_app.control.revoke([segment_task(job_id, job_attempt, index).task_id for index in indices])
        except Exception:
            logger.exception("could not revoke segments", extra={"job_id": str(job_id)})


def run_segment(job_id: uuid.UUID, job_attempt: int, index: int) -> str:
    """Render one planned segment and store its patch. Returns what happened, for logs and tests."""
    with new_session() as session:
        job = session.get(Job, job_id)
        if job is None or job.status != JobStatus.PROCESSING or job.attempts != job_attempt:
            return "skipped"
        spec = spec_of(session, job, job_attempt)
        reason = stop_reason(job)
        attempt = (
            None
            if reason
            else segments.claim(session, job_id, job_attempt, index, f"{socket.gethostname()}:{os.getpid()}")
        )
        session.commit()
    if reason:
        return stop_job(spec, reason)
    if attempt is None:
        return "skipped"  # done, or running elsewhere: a duplicate delivery
    log_fields = {"job_id": str(job_id), "segment": index, "attempt": attempt}
    settings = get_settings()
    with (
        SegmentBeat(job_id, job_attempt, index, attempt) as beat,
        tempfile.TemporaryDirectory(
            prefix=f"redub-{job_id}-{index}-", dir=settings.work_dir or None
        ) as directory,
    ):
        try:
            started = time.perf_counter()
            patch, frames = _render(spec, index, Path(directory), lambda: beat.reason is not None)
            seconds = time.perf_counter() - started
            if beat.reason:  # canceled, past the deadline or lost while rendering: store nothing
                return stop_job(spec, beat.reason)
            key = work_key(spec.id, spec.attempt, patch_name(index))
            get_storage().upload_file(key, patch, "application/octet-stream")
        except EngineError as error:
            if beat.reason:
                return stop_job(spec, beat.reason)
            _segment_failed(spec, index, attempt, error.code, error.message)
            logger.info("segment failed", extra={**log_fields, "code": error.code})
            return "failed"
        except Exception:
            logger.exception("segment broke", extra=log_fields)
            return _give_back(spec, index, attempt)
    metrics.record_render(frames, seconds, segments=1)
    return _segment_done(spec, index, attempt, seconds)


def _render(spec: JobSpec, index: int, workdir: Path, should_cancel: Callable[[], bool]) -> tuple[Path, int]:
    """The segment's patch, rendered here and saved in `workdir`, and its frame count."""
    from worker.engine.analysis.storage import load_analysis
    from worker.engine.audio_io import decode_for_models
    from worker.engine.fanout import render_patch
    from worker.engine.renderers import create_renderer

    options = options_of(spec)
    plan, video, audio, info = load_plan(spec, workdir, options)
    get_storage().download_file(work_key(spec.id, spec.attempt, ANALYSIS_NAME), workdir / ANALYSIS_NAME)
    analysis = load_analysis(workdir / ANALYSIS_NAME)
    samples = decode_for_models(audio, workdir, options.limits.max_duration_s).samples
    renderer = create_renderer(options.renderer, options.model)
    segment = plan.segments[index]
    patch = render_patch(video, info, samples, plan.length, segment, renderer, analysis, should_cancel)
    patch.save(workdir / "patch.npz")
    return workdir / "patch.npz", segment.frame_count


def load_plan(spec: JobSpec, workdir: Path, options: DubOptions) -> tuple[JobPlan, Path, Path, VideoInfo]:
    """The job attempt's plan and its inputs (from this worker's cache), with the video's probe."""
    from worker.engine.fanout import JobPlan
    from worker.engine.probe import probe_video

    path = workdir / PLAN_NAME
    get_storage().download_file(work_key(spec.id, spec.attempt, PLAN_NAME), path)
    document = json.loads(path.read_text())
    video = cached_input(**document["inputs"]["video"])
    audio = cached_input(**document["inputs"]["audio"])
    info = probe_video(video, options.limits)
    return JobPlan.from_json(document["plan"], info), video, audio, info


def _segment_done(spec: JobSpec, index: int, attempt: int, seconds: float) -> str:
    with new_session() as session:
        segments.lock_job(session, spec.id)
        if not segments.finish(
            session, spec.id, spec.attempt, index, attempt, SegmentStatus.DONE, render_seconds=seconds
        ):
            session.rollback()
            return "skipped"
        done, total = segments.counts(session, spec.id, spec.attempt)
        if done < total:
            if (
                segments.set_stage(
                    session,
                    spec.id,
                    spec.attempt,
                    segments.STAGE_RENDERING,
                    100.0 * done / total,
                    from_stage=segments.STAGE_RENDERING,
                )
                and spec.wants_progress_events
            ):
                _progress_event(session, spec.id)
        elif segments.set_stage(
            session,
            spec.id,
            spec.attempt,
            segments.STAGE_ASSEMBLING,
            0.0,
            from_stage=segments.STAGE_RENDERING,
        ):
            enqueue_after_commit(session, assembly_task(spec.id, spec.attempt))
        session.commit()
    logger.info("segment done", extra={"job_id": str(spec.id), "segment": index, "done": done, "of": total})
    return "done"


def _progress_event(session: Session, job_id: uuid.UUID) -> None:
    """`dub.progress` as segments finish, at most once per `WEBHOOK_PROGRESS_INTERVAL_S` whichever workers
    render them (the caller holds the job row's lock, so two segments ending together send one)."""
    last = webhook_repository.last_recorded(session, job_id, "dub.progress")
    if last is not None and utcnow() - last < timedelta(seconds=get_settings().webhook_progress_interval_s):
        return
    job = session.get(Job, job_id)
    if job is not None:
        webhooks.emit(session, job, "dub.progress")


def _segment_failed(spec: JobSpec, index: int, attempt: int, code: str, message: str) -> None:
    """A segment that cannot succeed fails the job with its code."""
    with new_session() as session:
        segments.finish(
            session,
            spec.id,
            spec.attempt,
            index,
            attempt,
            SegmentStatus.FAILED,
            error_code=code,
            error_message=message,
        )
        session.commit()
    if fail_job(spec, code, message, retryable=False):
        end_segments(spec.id, spec.attempt, code)


def _give_back(spec: JobSpec, index: int, attempt: int) -> str:
    """Our fault or a passing outage: the segment runs again (elsewhere, maybe), a bounded number of times."""
    settings = get_settings()
    if attempt >= settings.max_job_attempts:
        _segment_failed(spec, index, attempt, "internal_error", "The dub failed on our side.")
        return "failed"
    with new_session() as session:
        if segments.finish(session, spec.id, spec.attempt, index, attempt, SegmentStatus.QUEUED):
            send_segment(session, spec.id, spec.attempt, index, countdown=5.0 * attempt)
        session.commit()
    return "retrying"


# --- assembly (default queue) -----------------------------------------------------------------------


def run_assembly(job_id: uuid.UUID, job_attempt: int) -> str:
    """Paste every segment's patch into the source, encode and upload once, and record the success."""
    settings = get_settings()
    with new_session() as session:
        job = session.get(Job, job_id)
        if (
            job is None
            or job.status != JobStatus.PROCESSING
            or job.attempts != job_attempt
            or job.progress_stage != segments.STAGE_ASSEMBLING
        ):
            return "skipped"
        spec = spec_of(session, job, job_attempt)
        reason = stop_reason(job)
        session.commit()
    if reason:
        return stop_job(spec, reason)
    with (
        JobReporter(spec.id, spec.attempt, spec.wants_progress_events) as reporter,
        tempfile.TemporaryDirectory(prefix=f"redub-{job_id}-", dir=settings.work_dir or None) as directory,
    ):
        reporter.stage = segments.STAGE_ASSEMBLING
        return guarded(spec, reporter, lambda: _assemble(spec, reporter, Path(directory)))


def _assemble(spec: JobSpec, reporter: JobReporter, workdir: Path) -> str:
    from worker.engine.fanout import SegmentPatch, assemble
    from worker.engine.segments import Segment

    options = options_of(spec)
    plan, video, audio, _ = load_plan(spec, workdir, options)
    to_render = set(plan.to_render)
    storage = get_storage()

    def load_patch(segment: Segment) -> SegmentPatch | None:
        if segment.index not in to_render:
            return None
        path = workdir / "patch.npz"
        storage.download_file(work_key(spec.id, spec.attempt, patch_name(segment.index)), path)
        return SegmentPatch.load(path)

    output = workdir / "output.mp4"
    report = assemble(
        video,
        audio,
        output,
        options,
        plan,
        load_patch,
        progress=reporter.progress,
        should_cancel=reporter.should_cancel,
    )
    with new_session() as session:
        report.seconds["render"] = segments.render_seconds(session, spec.id)
    reporter.progress("uploading", 0.99)
    succeed(spec, report, output, rendered_here=False)
    remove_work(spec.id, spec.attempt, plan.to_render)
    return "succeeded"
