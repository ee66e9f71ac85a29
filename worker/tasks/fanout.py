"""One dub across many workers (REDUB_FANOUT): the job's own task plans it, one task per segment renders it
on the `gpu` queue, one task per chunk of output frames encodes it on the default queue, and one task joins
the chunks with the audio (a dub of one chunk is encoded whole, with its audio, by that chunk's task).

The plan (JSON), the analysis, each segment's patch and each chunk's video live in object storage under the
job's prefix; one SQL row per task (`kind`: render, encode, join) says which are done. An object's key depends
only on the job attempt and the row, so a task delivered twice writes the same object, and only the run
holding a row may mark it done. The last row of a kind to finish queues the next kind's, exactly once (the job
row is locked while rows are counted).
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
from dataclasses import dataclass
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
    TASK_ENCODE_CHUNK,
    TASK_RENDER_SEGMENT,
    PendingTask,
    enqueue_after_commit,
)
from app.core.storage import get_storage, input_key
from app.dubs import segment_repository as segments
from app.models import Job, JobStatus, SegmentKind, SegmentStatus
from app.models.base import utcnow
from app.webhooks import repository as webhook_repository
from app.webhooks import service as webhooks
from worker.engine.errors import CANCELED, DEADLINE_EXCEEDED, EngineError
from worker.tasks.input_cache import cached_decoded, cached_input
from worker.tasks.processing import (
    JobReporter,
    JobSpec,
    cancel,
    fail_job,
    media_recorder,
    options_of,
    spec_of,
    succeed,
)

if TYPE_CHECKING:
    from worker.engine.chunks import Chunk
    from worker.engine.fanout import JobPlan, SegmentPatch
    from worker.engine.pipeline import DubOptions, DubReport
    from worker.engine.probe import VideoInfo
    from worker.engine.segments import Segment

logger = logging.getLogger(__name__)

PLAN_NAME = "plan.json"
ANALYSIS_NAME = "analysis.npz"


def work_key(job_id: uuid.UUID, job_attempt: int, name: str) -> str:
    """Where a fanned-out job attempt keeps its plan and segment patches (removed once the dub ends). Per
    attempt: a late segment of an earlier attempt, whose inputs may have been fetched anew since, never
    writes over this one's patches."""
    return f"jobs/{job_id}/work/{job_attempt}/{name}"


def remove_work(job_id: uuid.UUID, job_attempt: int, units: list[tuple[str, int]]) -> None:
    """Best effort: a dub that ended keeps no plan, analysis, patches or chunks (leftovers only cost storage).
    `units`: the (kind, index) of the attempt's rows."""
    storage = get_storage()
    names = {SegmentKind.RENDER: patch_name, SegmentKind.ENCODE: chunk_name}
    try:
        for name in [
            PLAN_NAME,
            ANALYSIS_NAME,
            *(names[SegmentKind(kind)](index) for kind, index in units if kind in names),
        ]:
            storage.delete(work_key(job_id, job_attempt, name))
    except Exception:
        logger.exception("could not remove the job's work objects", extra={"job_id": str(job_id)})


def patch_name(index: int) -> str:
    return f"segments/{index:05d}.npz"


def chunk_name(index: int) -> str:
    return f"chunks/{index:05d}.mp4"


def unit_task(
    job_id: uuid.UUID,
    job_attempt: int,
    kind: str,
    index: int,
    countdown: float | None = None,
    priority: int = 0,
) -> PendingTask:
    """The task that runs a row. One id per row and job attempt: a cancel revokes it by that id."""
    if kind == SegmentKind.RENDER:
        return segment_task(job_id, job_attempt, index, countdown, priority)
    if kind == SegmentKind.ENCODE:
        arguments = (str(job_id), str(job_attempt), str(index))
        task_id = f"chunk-{job_id}-{job_attempt}-{index}"
        return PendingTask(TASK_ENCODE_CHUNK, arguments, QUEUE_DEFAULT, countdown, task_id)
    task_id = f"join-{job_id}-{job_attempt}"
    return PendingTask(TASK_ASSEMBLE, (str(job_id), str(job_attempt)), QUEUE_DEFAULT, countdown, task_id)


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


def send_unit(
    session: Session,
    job_id: uuid.UUID,
    job_attempt: int,
    kind: str,
    index: int,
    countdown: float | None = None,
) -> None:
    """Queue a row's task (after commit); a segment at the priority its place in the account's backlog
    gives (CPU work is not ranked: it follows the GPU work it finishes)."""
    priority = 0
    if kind == SegmentKind.RENDER:
        priority = segment_priority(segments.queued_ahead(session, job_id, index))
    enqueue_after_commit(session, unit_task(job_id, job_attempt, kind, index, countdown, priority))


# --- planning (the job's own task, after it fetched the inputs) ---------------------------------------


def plan_and_dispatch(
    spec: JobSpec, video: Path, audio: Path, options: DubOptions, reporter: JobReporter, workdir: Path
) -> str:
    """Plan the dub, store the plan and send one task per segment to render (or per chunk to encode at
    once, when no segment shows a face to dub)."""
    from worker.engine.chunks import plan_chunks
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
    # Cut here, once: every worker then agrees on the chunks whatever its own settings say.
    chunks = plan_chunks(plan, get_settings().assembly_chunk_frames)
    document = {
        "plan": plan.to_json(),
        "chunks": [[chunk.start, chunk.end] for chunk in chunks],
        "inputs": {
            "video": _stored_input(spec, "video", spec.video_url, spec.video_file_key, video),
            "audio": _stored_input(spec, "audio", spec.audio_url, spec.audio_file_key, audio),
        },
    }
    if analysis_path.exists():  # its hash keys each worker's cached copy, as the inputs' do
        document["analysis"] = {
            "key": work_key(spec.id, spec.attempt, ANALYSIS_NAME),
            "sha256": _sha256(analysis_path),
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
    work = {
        SegmentKind.RENDER: frame_counts,
        SegmentKind.ENCODE: {chunk.index: chunk.frame_count for chunk in chunks},
        SegmentKind.JOIN: {0: plan.length.output_frames} if len(chunks) > 1 else {},
    }
    # From here the rows say whether the job is alive; a late beat must not overwrite the stage.
    reporter.close()
    with new_session() as session:
        first = segments.replace_plan(session, spec.id, spec.attempt, work)
        stage = segments.STAGE_RENDERING if first == SegmentKind.RENDER else segments.STAGE_ASSEMBLING
        if not segments.set_stage(session, spec.id, spec.attempt, stage, 0.0, from_stage=None):
            session.rollback()
            remove_work(spec.id, spec.attempt, [])  # the job ended (or moved on) while it was planned
            return "lost"
        ahead = segments.queued_ahead(session, spec.id, 0)  # the account's other jobs' queued segments
        for rank, index in enumerate(work[first], start=ahead):
            priority = segment_priority(rank) if first == SegmentKind.RENDER else 0
            enqueue_after_commit(session, unit_task(spec.id, spec.attempt, first, index, priority=priority))
        session.commit()
    logger.info(
        "job planned",
        extra={
            "job_id": str(spec.id),
            "segments": len(plan.segments),
            "to_render": len(frame_counts),
            "chunks": len(chunks),
        },
    )
    return "planned"


def _stored_input(
    spec: JobSpec, name: str, url: str | None, file_key: str | None, local: Path
) -> dict[str, str]:
    """Where the workers find an input (a fetched one was kept under the job's prefix) and its hash."""
    key = input_key(spec.id, name) if url is not None else file_key
    assert key is not None
    return {"key": key, "sha256": _sha256(local)}


def _sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


# --- the rows' tasks: a segment (gpu queue), a chunk and the join (default queue) ------------------------


class SegmentBeat:
    """Keeps a running row fresh and watches for a cancel or the deadline meanwhile."""

    def __init__(self, job_id: uuid.UUID, job_attempt: int, kind: str, index: int, attempt: int) -> None:
        settings = get_settings()
        self.key = (job_id, job_attempt, kind, index, attempt)
        self.interval_s = max(
            0.2, min(settings.stale_processing_after_s / 4, settings.cancel_poll_interval_s)
        )
        self.stop = threading.Event()
        self.reason: str | None = None  # why the job must stop: canceled, deadline, or lost
        self.thread = threading.Thread(target=self._beat, name=f"{kind}-{job_id}-{index}", daemon=True)

    def __enter__(self) -> SegmentBeat:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def should_stop(self) -> bool:
        return self.reason is not None

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
    """End the job for `reason` (once, whoever sees it first) and revoke its queued tasks."""
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
    """The job ended: its unfinished rows are closed, its work objects removed, and the queued tasks revoked
    (a revoked task that starts anyway finds the job over and does nothing)."""
    from worker.celery_app import celery_app

    with new_session() as session:
        queued = [(row.kind, row.index) for row in segments.unfinished(session, job_id)]
        planned = segments.indices(session, job_id, job_attempt)
        segments.close_unfinished(session, job_id, code)
        session.commit()
    remove_work(job_id, job_attempt, planned)
    if queued:
        try:
            celery_app.control.revoke(
                [unit_task(job_id, job_attempt, kind, index).task_id for kind, index in queued]
            )
        except Exception:
            logger.exception("could not revoke the job's tasks", extra={"job_id": str(job_id)})


# What a row's task does: given the job, the row's index, a work folder and a "stop now" check, it stores its
# result (raising EngineError(CANCELED) instead when told to stop) and returns the frames it rendered.
UnitWork = Callable[[JobSpec, int, Path, Callable[[], bool]], int | None]


def run_segment(job_id: uuid.UUID, job_attempt: int, index: int) -> str:
    """Render one planned segment and store its patch. Returns what happened, for logs and tests."""
    return _run_unit(job_id, job_attempt, SegmentKind.RENDER, index, _render)


def run_chunk(job_id: uuid.UUID, job_attempt: int, index: int) -> str:
    """Encode one chunk of the output and store it (for a dub of one chunk: make and record the output)."""
    return _run_unit(job_id, job_attempt, SegmentKind.ENCODE, index, _encode)


def run_join(job_id: uuid.UUID, job_attempt: int) -> str:
    """Join the encoded chunks with the dub's audio, upload the output and record the success."""
    return _run_unit(job_id, job_attempt, SegmentKind.JOIN, 0, _join)


def _run_unit(job_id: uuid.UUID, job_attempt: int, kind: SegmentKind, index: int, work: UnitWork) -> str:
    with new_session() as session:
        job = session.get(Job, job_id)
        if job is None or job.status != JobStatus.PROCESSING or job.attempts != job_attempt:
            return "skipped"
        spec = spec_of(session, job, job_attempt)
        reason = stop_reason(job)
        worker = f"{socket.gethostname()}:{os.getpid()}"
        attempt = None if reason else segments.claim(session, job_id, job_attempt, kind, index, worker)
        session.commit()
    if reason:
        return stop_job(spec, reason)
    if attempt is None:
        return "skipped"  # waiting, done, or running elsewhere: a duplicate delivery
    log_fields = {"job_id": str(job_id), "kind": kind.value, "segment": index, "attempt": attempt}
    settings = get_settings()
    with (
        SegmentBeat(job_id, job_attempt, kind, index, attempt) as beat,
        tempfile.TemporaryDirectory(
            prefix=f"redub-{job_id}-{kind}-{index}-", dir=settings.work_dir or None
        ) as directory,
    ):
        try:
            started = time.perf_counter()
            frames = work(spec, index, Path(directory), beat.should_stop)
            seconds = time.perf_counter() - started
        except EngineError as error:
            if beat.reason:  # canceled, past the deadline or lost while working: nothing was stored
                return stop_job(spec, beat.reason)
            _unit_failed(spec, kind, index, attempt, error.code, error.message)
            logger.info("segment failed", extra={**log_fields, "code": error.code})
            return "failed"
        except Exception:
            logger.exception("segment broke", extra=log_fields)
            return _give_back(spec, kind, index, attempt)
    if kind == SegmentKind.RENDER:
        metrics.record_render(frames or 0, seconds, segments=1)
    return _unit_done(spec, kind, index, attempt, seconds, frames)


def _stop_if(should_stop: Callable[[], bool]) -> None:
    if should_stop():
        raise EngineError(CANCELED, "the dub was canceled")


def _render(spec: JobSpec, index: int, workdir: Path, should_stop: Callable[[], bool]) -> int:
    """Render the segment here and store its patch; returns the frames the renderer changed."""
    from worker.engine.analysis.storage import load_analysis
    from worker.engine.audio_io import decode_for_models
    from worker.engine.fanout import render_patch
    from worker.engine.renderers import create_renderer

    options = options_of(spec)
    stored = load_plan(spec, workdir, options)
    if stored.analysis is None:  # planned before plans named the analysis's hash: no reuse
        get_storage().download_file(work_key(spec.id, spec.attempt, ANALYSIS_NAME), workdir / ANALYSIS_NAME)
        analysis = load_analysis(workdir / ANALYSIS_NAME)
    else:
        analysis_path = cached_input(**stored.analysis, workdir=workdir)
        analysis = cached_decoded(
            ("analysis", stored.analysis["sha256"]), lambda: load_analysis(analysis_path)
        )
    max_seconds = options.limits.max_duration_s
    # The dub track decoded once per process: memory-mapped from a file whose space is freed when the map is
    # dropped from the cache (the task's folder that held its name is gone by then).
    samples = cached_decoded(
        ("dub-track", stored.audio_sha256, max_seconds),
        lambda: decode_for_models(stored.audio, workdir, max_seconds).samples,
    )
    renderer = create_renderer(options.renderer, options.model)
    segment = stored.plan.segments[index]
    patch = render_patch(
        stored.video, stored.info, samples, stored.plan.length, segment, renderer, analysis, should_stop
    )
    _stop_if(should_stop)  # stopped while rendering: store nothing
    patch.save(workdir / "patch.npz")
    key = work_key(spec.id, spec.attempt, patch_name(index))
    get_storage().upload_file(key, workdir / "patch.npz", "application/octet-stream")
    return segment.frame_count if patch.rendered else 0


@dataclass
class StoredPlan:
    plan: JobPlan
    video: Path
    audio: Path
    audio_sha256: str
    info: VideoInfo
    chunks: list[Chunk]
    analysis: dict[str, str] | None  # its key and hash (none: no analysis, or planned before plans named it)


def load_plan(spec: JobSpec, workdir: Path, options: DubOptions) -> StoredPlan:
    """The job attempt's plan, its inputs (from this worker's cache), the video's probe and the chunks."""
    from worker.engine.chunks import Chunk
    from worker.engine.fanout import JobPlan
    from worker.engine.probe import probe_video

    path = workdir / PLAN_NAME
    get_storage().download_file(work_key(spec.id, spec.attempt, PLAN_NAME), path)
    document = json.loads(path.read_text())
    inputs = document["inputs"]
    video = cached_input(**inputs["video"], workdir=workdir)
    audio = cached_input(**inputs["audio"], workdir=workdir)
    info = probe_video(video, options.limits)
    plan = JobPlan.from_json(document["plan"], info)
    chunks = [Chunk(index, int(start), int(end)) for index, (start, end) in enumerate(document["chunks"])]
    return StoredPlan(plan, video, audio, inputs["audio"]["sha256"], info, chunks, document.get("analysis"))


def _patch_loader(spec: JobSpec, plan: JobPlan, workdir: Path) -> Callable[[Segment], SegmentPatch | None]:
    """A segment's stored patch (None: the segment was not rendered), downloaded when asked for."""
    from worker.engine.fanout import SegmentPatch

    to_render = set(plan.to_render)
    storage = get_storage()

    def load_patch(segment: Segment) -> SegmentPatch | None:
        if segment.index not in to_render:
            return None
        path = workdir / "patch.npz"
        storage.download_file(work_key(spec.id, spec.attempt, patch_name(segment.index)), path)
        return SegmentPatch.load(path)

    return load_patch


def _encode(spec: JobSpec, index: int, workdir: Path, should_stop: Callable[[], bool]) -> None:
    """Encode chunk `index` and store it; a dub of one chunk is assembled here whole, audio and all."""
    from worker.engine.chunks import encode_chunk
    from worker.engine.fanout import assemble

    options = options_of(spec)
    stored = load_plan(spec, workdir, options)
    plan, video, audio, chunks = stored.plan, stored.video, stored.audio, stored.chunks
    load_patch = _patch_loader(spec, plan, workdir)
    if len(chunks) == 1:
        output = workdir / "output.mp4"
        report = assemble(video, audio, output, options, plan, load_patch, should_cancel=should_stop)
        _finish_output(spec, report, output)
        return
    piece = workdir / "chunk.mp4"
    encode_chunk(video, piece, options, plan, chunks[index], load_patch, should_stop)
    _stop_if(should_stop)
    get_storage().upload_file(work_key(spec.id, spec.attempt, chunk_name(index)), piece, "video/mp4")


def _join(spec: JobSpec, _index: int, workdir: Path, should_stop: Callable[[], bool]) -> None:
    from worker.engine.chunks import join_chunks

    options = options_of(spec)
    stored = load_plan(spec, workdir, options)
    plan, video, audio, chunks = stored.plan, stored.video, stored.audio, stored.chunks
    storage = get_storage()

    def fetch(chunk: Chunk) -> Path:
        path = workdir / "chunk.mp4"  # one chunk on disk at a time: each replaces the one before
        storage.download_file(work_key(spec.id, spec.attempt, chunk_name(chunk.index)), path)
        return path

    with new_session() as session:
        _, frames_rendered = segments.work_totals(session, spec.id, SegmentKind.RENDER)
    output = workdir / "output.mp4"
    report = join_chunks(
        chunks, fetch, video, audio, output, options, plan, frames_rendered, should_cancel=should_stop
    )
    _finish_output(spec, report, output)


def _finish_output(spec: JobSpec, report: DubReport, output: Path) -> None:
    """Upload the output, record the success with the time every task of the dub worked, and clean up."""
    with new_session() as session:
        report.seconds["render"], _ = segments.work_totals(session, spec.id, SegmentKind.RENDER)
        chunk_seconds, _ = segments.work_totals(session, spec.id, SegmentKind.ENCODE)
        planned = segments.indices(session, spec.id, spec.attempt)
    if chunk_seconds:  # the chunks' tasks (joined here), beside this task's own stages
        report.seconds["encode_chunks"] = chunk_seconds
    succeed(spec, report, output, rendered_here=False)
    remove_work(spec.id, spec.attempt, planned)


def _unit_done(
    spec: JobSpec, kind: SegmentKind, index: int, attempt: int, seconds: float, frames: int | None
) -> str:
    with new_session() as session:
        segments.lock_job(session, spec.id)
        if not segments.finish(
            session,
            spec.id,
            spec.attempt,
            kind,
            index,
            attempt,
            SegmentStatus.DONE,
            render_seconds=seconds,
            frames_rendered=frames,
        ):
            session.rollback()
            return "skipped"
        done, total = segments.counts(session, spec.id, spec.attempt, (kind,))
        following: str = kind
        if done == total:
            following, indices = segments.release_next(session, spec.id, spec.attempt, kind)
            for queued in indices:
                send_unit(session, spec.id, spec.attempt, following, queued)
        if following == SegmentKind.RENDER:
            stage, percent = segments.STAGE_RENDERING, 100.0 * done / total
            from_stage = segments.STAGE_RENDERING
        else:
            assembled, parts = segments.counts(
                session, spec.id, spec.attempt, (SegmentKind.ENCODE, SegmentKind.JOIN)
            )
            stage, percent = segments.STAGE_ASSEMBLING, 100.0 * assembled / parts
            from_stage = segments.STAGE_RENDERING if kind == SegmentKind.RENDER else segments.STAGE_ASSEMBLING
        if (
            segments.set_stage(session, spec.id, spec.attempt, stage, percent, from_stage=from_stage)
            and spec.wants_progress_events
            and 0 < percent < 100
        ):
            _progress_event(session, spec.id)
        session.commit()
    logger.info(
        "segment done",
        extra={"job_id": str(spec.id), "kind": kind.value, "segment": index, "done": done, "of": total},
    )
    return "done"


def _progress_event(session: Session, job_id: uuid.UUID) -> None:
    """`dub.progress` as rows finish, at most once per `WEBHOOK_PROGRESS_INTERVAL_S` whichever workers
    run them (the caller holds the job row's lock, so two rows ending together send one)."""
    last = webhook_repository.last_recorded(session, job_id, "dub.progress")
    if last is not None and utcnow() - last < timedelta(seconds=get_settings().webhook_progress_interval_s):
        return
    job = session.get(Job, job_id)
    if job is not None:
        webhooks.emit(session, job, "dub.progress")


def _unit_failed(spec: JobSpec, kind: SegmentKind, index: int, attempt: int, code: str, message: str) -> None:
    """A row whose work cannot succeed fails the job with its code."""
    with new_session() as session:
        segments.finish(
            session,
            spec.id,
            spec.attempt,
            kind,
            index,
            attempt,
            SegmentStatus.FAILED,
            error_code=code,
            error_message=message,
        )
        session.commit()
    if fail_job(spec, code, message, retryable=False):
        end_segments(spec.id, spec.attempt, code)


def _give_back(spec: JobSpec, kind: SegmentKind, index: int, attempt: int) -> str:
    """Our fault or a passing outage: the row runs again (elsewhere, maybe), a bounded number of times."""
    settings = get_settings()
    if attempt >= settings.max_job_attempts:
        _unit_failed(spec, kind, index, attempt, "internal_error", "The dub failed on our side.")
        return "failed"
    with new_session() as session:
        if segments.finish(session, spec.id, spec.attempt, kind, index, attempt, SegmentStatus.QUEUED):
            send_unit(session, spec.id, spec.attempt, kind, index, countdown=5.0 * attempt)
        session.commit()
    return "retrying"
