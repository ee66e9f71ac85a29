"""One dub job end to end: claim it, fetch inputs, run the engine, upload the output, record the outcome.

Safe to run twice: the claim is a conditional UPDATE, and only the run holding the current attempt number
may move the job on, so a redelivered task or a run the reaper gave up on changes nothing.
"""

from __future__ import annotations

import errno
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from app.core import metrics
from app.core.config import get_settings
from app.core.db import new_session
from app.core.fetch import FetchError
from app.core.logging import bind_log_fields
from app.core.queue import TASK_PROCESS_DUB, PendingTask, dub_queue, enqueue_after_commit
from app.core.storage import get_storage, input_key, output_key
from app.dubs import repository
from app.models import Job, JobStatus, MediaFile
from app.webhooks import service as webhooks
from worker.engine.errors import EngineError
from worker.tasks.inputs import engine_options, obtain

if TYPE_CHECKING:
    from worker.engine.pipeline import DubOptions, DubReport
    from worker.engine.probe import AudioInfo, VideoInfo

logger = logging.getLogger(__name__)

CANCELED = "canceled"


@dataclass(frozen=True)
class JobSpec:
    """What the run needs from the row, read once so no ORM object crosses the long engine call."""

    id: uuid.UUID
    attempt: int
    video_url: str | None
    audio_url: str | None
    video_file_key: str | None
    audio_file_key: str | None
    sync_mode: str
    max_duration_s: float
    wants_progress_events: bool
    speakers: list[Any] | None
    on_no_face: str
    model: str | None


class JobReporter:
    """The engine's `progress` and `should_cancel` callbacks, writing to SQL at most once a second."""

    def __init__(self, job_id: uuid.UUID, attempt: int, wants_progress_events: bool) -> None:
        settings = get_settings()
        self.job_id = job_id
        self.attempt = attempt
        self.wants_progress_events = wants_progress_events
        self.write_interval_s = settings.progress_write_interval_s
        self.cancel_interval_s = settings.cancel_poll_interval_s
        self.event_interval_s = settings.webhook_progress_interval_s
        self.last_write = 0.0
        self.last_cancel_check = 0.0
        self.last_event = 0.0
        self.cancel_seen = False
        self.lost = False
        # A heartbeat of its own, so long downloads and long segments never look like a dead worker; but not
        # for a fetch that has brought nothing for `stall_after_s`: the reaper then gives the job to another
        # attempt (this run sees that it lost the job at its next cancel poll and stops).
        self.heartbeat_interval_s = max(0.2, settings.stale_processing_after_s / 4)
        self.stall_after_s = settings.stale_processing_after_s
        self.fetch_activity: float | None = None  # when the running URL fetch last brought bytes
        self.stop = threading.Event()
        self.stage = "starting"
        self.percent = 0.0
        self.bytes_fetched: int | None = None  # inputs downloaded so far (None: no download)
        self.bytes_done = 0
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> JobReporter:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the heartbeat (a fanned-out job's segments take over saying that it is alive)."""
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)

    def _beat(self) -> None:
        while not self.stop.wait(self.heartbeat_interval_s):
            try:
                self.beat()
            except Exception:
                logger.exception("heartbeat failed", extra={"job_id": str(self.job_id)})

    def fetch_stalled(self) -> bool:
        activity = self.fetch_activity
        return activity is not None and time.monotonic() - activity > self.stall_after_s

    def beat(self) -> None:
        if self.fetch_stalled():
            logger.warning("download stalled, no heartbeat", extra={"job_id": str(self.job_id)})
            return
        with new_session() as session:
            if not repository.heartbeat(
                session, self.job_id, self.attempt, self.stage, self.percent, self.bytes_fetched
            ):
                self.lost = True
            session.commit()

    def progress(self, stage: str, fraction: float) -> None:
        self.stage, self.percent = stage, 100.0 * fraction
        now = time.monotonic()
        if now - self.last_write < self.write_interval_s and fraction < 1.0:
            return
        self.last_write = now
        with new_session() as session:
            if not repository.heartbeat(
                session, self.job_id, self.attempt, stage, 100.0 * fraction, self.bytes_fetched
            ):
                # The reaper gave this run's job to another attempt: stop as soon as the engine asks.
                self.lost = True
            elif (
                self.wants_progress_events
                and now - self.last_event >= self.event_interval_s
                # The end is announced by `dub.succeeded`; a "100 %" progress event would only repeat it.
                and fraction < 1.0
                and stage != "done"
            ):
                self.last_event = now
                job = session.get(Job, self.job_id)
                if job is not None:
                    webhooks.emit(session, job, "dub.progress")
            session.commit()

    def should_cancel(self) -> bool:
        now = time.monotonic()
        if self.cancel_seen or self.lost:
            return True
        if now - self.last_cancel_check < self.cancel_interval_s:
            return False
        self.last_cancel_check = now
        with new_session() as session:
            owned, self.cancel_seen = repository.run_state(session, self.job_id, self.attempt)
        self.lost = self.lost or not owned
        return self.cancel_seen or self.lost


def _claim(job_id: uuid.UUID) -> JobSpec | None:
    with new_session() as session:
        attempt = repository.claim(session, job_id)
        if attempt is None:
            session.rollback()
            return None
        job = session.get(Job, job_id)
        assert job is not None
        repository.add_event(session, job_id, "started", {"attempt": attempt})
        if attempt == 1:  # a retried attempt is not news to the customer
            webhooks.emit(session, job, "dub.started")
        spec = spec_of(session, job, attempt)
        session.commit()
        return spec


def spec_of(session: Session, job: Job, attempt: int) -> JobSpec:
    bind_log_fields(account_id=str(job.account_id))  # the task's later log lines name the account
    files = {
        file_id: session.get(MediaFile, file_id)
        for file_id in (job.video_file_id, job.audio_file_id)
        if file_id is not None
    }
    return JobSpec(
        id=job.id,
        attempt=attempt,
        video_url=job.video_url,
        audio_url=job.audio_url,
        video_file_key=_object_key(files, job.video_file_id),
        audio_file_key=_object_key(files, job.audio_file_id),
        sync_mode=job.sync_mode,
        max_duration_s=job.max_duration_s,
        wants_progress_events="dub.progress" in job.webhook_events,
        speakers=job.speakers,
        on_no_face=job.on_no_face,
        model=job.model,
    )


def _object_key(files: dict[uuid.UUID, MediaFile | None], file_id: uuid.UUID | None) -> str | None:
    if file_id is None:
        return None
    media = files.get(file_id)
    return media.object_key if media is not None else None


def media_facts(probed: dict[str, Any], video_bytes: int, audio_bytes: int) -> dict[str, Any]:
    """What an integrator wants to know about the inputs, from the engine's probe facts."""
    video, audio = probed["video"], probed["audio"]
    return {
        "video": {
            "size_bytes": video_bytes,
            "duration_s": video["duration_s"],
            "frame_rate": video["frame_rate"],
            "frame_count": video["frame_count"],
            "width": video["width"],
            "height": video["height"],
            "rotation": video["rotation"],
            "codec": video["codec"],
            "container": video["container"],
        },
        "audio": {
            "size_bytes": audio_bytes,
            "duration_s": audio["duration_s"],
            "codec": audio["codec"],
            "sample_rate": audio["sample_rate"],
            "channels": audio["channels"],
        },
    }


def media_recorder(spec: JobSpec, video: Path, audio: Path) -> Callable[[VideoInfo, AudioInfo], None]:
    """Stores the inputs' facts on the job as soon as the engine has probed them (a failed or canceled dub
    keeps them too)."""
    sizes = video.stat().st_size, audio.stat().st_size

    def record(video_info: VideoInfo, audio_info: AudioInfo) -> None:
        facts = media_facts({"video": video_info.summary(), "audio": audio_info.summary()}, *sizes)
        with new_session() as session:
            repository.record_media(session, spec.id, spec.attempt, facts)
            session.commit()

    return record


def _download_progress(reporter: JobReporter, start: float, end: float) -> Callable[[int, int | None], None]:
    """Bytes fetched as `downloading` percent (between `start` and `end` of the stage), and a cancel
    check after every chunk, so a cancel stops a long download within a poll interval."""

    def report(received: int, total: int | None) -> None:
        reporter.fetch_activity = time.monotonic()
        if reporter.should_cancel():
            raise EngineError(CANCELED, "the dub was canceled")
        reporter.bytes_fetched = reporter.bytes_done + received
        # Just under 100 %: the stage is not over until the last byte is on disk. Without a declared length
        # the percent stays put and the bytes fetched tell the progress.
        share = min(received / total, 0.999) if total else 0.0
        reporter.progress("downloading", start + (end - start) * share)

    return report


def _obtain(
    spec: JobSpec,
    name: str,
    url: str | None,
    file_key: str | None,
    workdir: Path,
    reporter: JobReporter,
    on_progress: Callable[[int, int | None], None],
) -> Path:
    # A fetched input is kept beside the output, so a failed job can be looked into and a rerun needs
    # no second fetch. The cancel poll also runs while the server sends nothing (no chunk to report).
    reporter.fetch_activity = time.monotonic() if url is not None else None
    try:
        return obtain(
            name,
            url,
            file_key,
            workdir,
            keep_as=input_key(spec.id, name),
            on_progress=on_progress,
            is_canceled=reporter.should_cancel,
        )
    finally:
        reporter.fetch_activity = None


def finish(spec: JobSpec, status: JobStatus, event: str, **values: object) -> bool:
    """Record the outcome; False when the job moved on without this run."""
    with new_session() as session:
        if not repository.finish(session, spec.id, spec.attempt, status, **values):
            session.rollback()
            logger.warning("job moved on without this run", extra={"job_id": str(spec.id)})
            return False
        repository.add_event(session, spec.id, status.value, {"code": values.get("error_code")})
        job = session.get(Job, spec.id)
        assert job is not None
        webhooks.emit(session, job, event)
        session.commit()
    metrics.JOBS_FINISHED.labels(status.value).inc()
    return True


def fail_job(spec: JobSpec, code: str, message: str, retryable: bool) -> bool:
    return finish(
        spec,
        JobStatus.FAILED,
        "dub.failed",
        error_code=code,
        error_message=message,
        error_retryable=retryable,
    )


def _retry_later(spec: JobSpec, delay_s: float) -> None:
    with new_session() as session:
        if repository.requeue(session, spec.id, spec.attempt):
            repository.add_event(session, spec.id, "requeued", {"attempt": spec.attempt})
            enqueue_after_commit(
                session,
                PendingTask(TASK_PROCESS_DUB, (str(spec.id),), dub_queue(get_settings()), countdown=delay_s),
            )
        session.commit()


def run_job(job_id: uuid.UUID) -> str:
    """Process one job if it is still queued. Returns what happened, for logs and tests."""
    settings = get_settings()
    spec = _claim(job_id)
    if spec is None:
        logger.info("job not claimable", extra={"job_id": str(job_id)})
        return "skipped"
    logger.info("job started", extra={"job_id": str(job_id), "attempt": spec.attempt})
    with (
        JobReporter(spec.id, spec.attempt, spec.wants_progress_events) as reporter,
        tempfile.TemporaryDirectory(prefix=f"redub-{job_id}-", dir=settings.work_dir or None) as directory,
    ):
        return guarded(spec, reporter, lambda: _dub(spec, reporter, Path(directory)))


def _dub(spec: JobSpec, reporter: JobReporter, workdir: Path) -> str:
    from worker.engine.pipeline import dub

    settings = get_settings()
    reporter.progress("downloading", 0.0)
    fetch_started = time.perf_counter()
    # The video is usually the bigger download: it takes most of the stage's percent.
    video = _obtain(
        spec,
        "video",
        spec.video_url,
        spec.video_file_key,
        workdir,
        reporter,
        _download_progress(reporter, 0, 0.09),
    )
    reporter.bytes_done = reporter.bytes_fetched or 0
    audio = _obtain(
        spec,
        "audio",
        spec.audio_url,
        spec.audio_file_key,
        workdir,
        reporter,
        _download_progress(reporter, 0.09, 0.1),
    )
    metrics.STAGE_SECONDS.labels("fetch").observe(time.perf_counter() - fetch_started)
    if reporter.should_cancel():
        raise EngineError(CANCELED, "the dub was canceled")
    options = options_of(spec)
    if settings.fanout:
        from worker.tasks.fanout import plan_and_dispatch

        return plan_and_dispatch(spec, video, audio, options, reporter, workdir)
    output = workdir / "output.mp4"
    report = dub(
        video,
        audio,
        output,
        options,
        progress=reporter.progress,
        should_cancel=reporter.should_cancel,
        on_probed=media_recorder(spec, video, audio),
    )
    reporter.progress("uploading", 0.99)
    succeed(spec, report, output)
    return "succeeded"


def options_of(spec: JobSpec) -> DubOptions:
    return engine_options(
        spec.sync_mode,
        spec.max_duration_s,
        spec.on_no_face,
        spec.speakers,
        model=spec.model or get_settings().default_model or None,
    )


def succeed(spec: JobSpec, report: DubReport, output: Path, rendered_here: bool = True) -> None:
    """Upload the output and record the success (a run that lost the job records nothing).
    `rendered_here`: False when other workers rendered the segments (they counted their frames)."""
    key = output_key(spec.id)
    upload_started = time.perf_counter()
    get_storage().upload_file(key, output, "video/mp4")
    metrics.record_stages({**report.seconds, "upload": time.perf_counter() - upload_started})
    if rendered_here:
        loop_s = sum(report.seconds.get(stage, 0.0) for stage in metrics.RENDER_LOOP_STAGES)
        metrics.record_render(report.plan.output_frames, loop_s, len(report.segments))
    summary = report.to_dict()
    duration = summary.get("output", {}).get("duration_s")
    finish(
        spec,
        JobStatus.SUCCEEDED,
        "dub.succeeded",
        output_key=key,
        output_size=output.stat().st_size,
        output_duration_s=float(duration) if duration is not None else None,
        report=summary,
        analysis=summary["analysis"],
        frames_rendered=report.frames_rendered,
        stage_seconds=summary["seconds"],
        progress_stage="done",
        progress_percent=100.0,
    )
    logger.info("job succeeded", extra={"job_id": str(spec.id), "attempt": spec.attempt})


def out_of_space(error: BaseException) -> bool:
    """Whether the worker's disk filled up somewhere under `error` (the engine and the fetcher wrap what
    they catch)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        current = current.__cause__ or current.__context__
    return False


def guarded(spec: JobSpec, reporter: JobReporter, work: Callable[[], str]) -> str:
    """Run a job's work and turn what it raises into the job's outcome."""
    log_fields = {"job_id": str(spec.id), "attempt": spec.attempt}
    try:
        return work()
    except (EngineError, FetchError) as error:
        if reporter.lost:
            return "lost"
        if error.code == CANCELED or reporter.cancel_seen:
            cancel(spec)
            logger.info("job canceled", extra=log_fields)
            return "canceled"
        if out_of_space(error):  # not the input's fault: retried below, like any fault of ours
            return _broke(spec, error, log_fields)
        retryable = error.retryable if isinstance(error, FetchError) else False
        fail_job(spec, error.code, error.message, retryable=retryable)
        logger.info("job failed", extra={**log_fields, "code": error.code})
        return "failed"
    except Exception as error:
        return _broke(spec, error, log_fields)


def _broke(spec: JobSpec, error: Exception, log_fields: dict[str, Any]) -> str:
    settings = get_settings()
    logger.error("job broke", exc_info=error, extra=log_fields)
    # Our fault or a passing outage (storage, database, a full disk): try again a bounded number of times
    # (another worker may take it).
    if spec.attempt < settings.max_job_attempts:
        _retry_later(spec, delay_s=settings.job_retry_delay_s * spec.attempt)
        return "retrying"
    if out_of_space(error):
        # Its temporary disk (REDUB_WORK_DIR) filled up: ours to fix, so retryable.
        fail_job(spec, "worker_disk_full", "The worker ran out of disk space for this dub.", retryable=True)
    else:
        fail_job(spec, "internal_error", "The dub failed on our side.", retryable=True)
    return "failed"


def cancel(spec: JobSpec) -> bool:
    return finish(
        spec, JobStatus.CANCELED, "dub.canceled", error_code=CANCELED, error_message="Canceled on request."
    )
