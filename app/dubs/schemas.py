from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import Row

from app.core.config import get_settings
from app.core.storage import ObjectStorage, presigned_url_with_expiry
from app.models import Job

SyncMode = Literal["auto", "cut_off", "loop", "bounce", "silence", "remap"]
EventType = Literal["dub.started", "dub.progress", "dub.succeeded", "dub.failed", "dub.canceled"]
EVENT_TYPES = get_args(EventType)
MetadataValue = str | int | float | bool | None
DEFAULT_EVENTS: list[str] = ["dub.succeeded", "dub.failed", "dub.canceled"]
OnNoFace = Literal["passthrough", "fail"]
# Every number is bounded and finite at the door: Python's JSON parser turns `1e400` into infinity and
# accepts `NaN`, which PostgreSQL's JSON refuses and the engine cannot use.
_FINITE = ConfigDict(extra="forbid", allow_inf_nan=False)
_MAX_PIXELS = 100_000.0
# Integers JSON clients can hold exactly (JavaScript's Number.MAX_SAFE_INTEGER).
_MAX_SAFE_INTEGER = 2**53 - 1
FrameIndex = Annotated[StrictInt, Field(ge=0, le=10_000_000, description="Source frame index, from 0.")]
Coordinate = Annotated[float, Field(ge=0, le=_MAX_PIXELS)]
Extent = Annotated[float, Field(gt=0, le=_MAX_PIXELS)]


class SpeakerPoint(BaseModel):
    model_config = _FINITE

    frame: FrameIndex
    x: Coordinate = Field(description="Display pixels from the left.")
    y: Coordinate = Field(description="Display pixels from the top.")


class SpeakerBox(BaseModel):
    model_config = _FINITE

    frame: FrameIndex
    x: Coordinate
    y: Coordinate
    width: Extent
    height: Extent


class Speaker(BaseModel):
    """One person to dub, named by exactly one of a face track id (from a preflight), a point on the face
    in some frame, or boxes around the face."""

    model_config = _FINITE

    track_id: Annotated[StrictInt, Field(ge=0, le=1_000_000)] | None = None
    point: SpeakerPoint | None = None
    boxes: list[SpeakerBox] | None = Field(None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _exactly_one(self) -> Speaker:
        given = [name for name in ("track_id", "point", "boxes") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a speaker needs exactly one of track_id, point or boxes")
        return self


class DubCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "video_url": "https://example.com/talk.mp4",
                    "audio_url": "https://example.com/talk.fr.m4a",
                    "sync_mode": "auto",
                    "webhook_url": "https://example.com/hooks/redub",
                    "metadata": {"order": "A-17"},
                },
                {"video_file_id": "3f1c…", "audio_file_id": "9b2e…", "speakers": [{"track_id": 0}]},
            ]
        },
    )

    video_url: str | None = Field(None, max_length=4096, description="Public http(s) URL of the video.")
    audio_url: str | None = Field(None, max_length=4096, description="Public http(s) URL of the new audio.")
    video_file_id: uuid.UUID | None = Field(
        None, description="An id from `POST /v1/files`, instead of a URL."
    )
    audio_file_id: uuid.UUID | None = Field(
        None, description="An id from `POST /v1/files`, instead of a URL."
    )
    webhook_url: str | None = Field(None, max_length=4096)
    webhook_events: list[EventType] | None = Field(
        None,
        description="Events to send; default the terminal events (`dub.succeeded`, `dub.failed`, "
        "`dub.canceled`). `[]` sends none (not allowed with a `webhook_url`). `dub.started` (a worker took "
        "it) and `dub.progress` (throttled) are sent only when listed.",
    )
    sync_mode: SyncMode = Field("auto", description="What to do when audio and video lengths differ.")
    metadata: dict[str, MetadataValue] = Field(default_factory=dict, description="Echoed back; ≤ 50 keys.")
    speakers: list[Speaker] | None = Field(
        None,
        min_length=1,
        max_length=20,
        description="Who to dub; default: whoever speaks in the source. A pin that matches no face fails "
        "the dub with `speaker_not_found`.",
    )
    model: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="The model that renders the dub, an `id` from `GET /v1/models`; default: the server's "
        "default model. `passthrough` only replaces the audio.",
    )
    on_no_face: OnNoFace = Field(
        "passthrough",
        description="Frames without a usable face: `passthrough` leaves them unchanged, `fail` fails the dub "
        "with `no_face`.",
    )

    @field_validator("metadata")
    @classmethod
    def _json_safe_numbers(cls, metadata: dict[str, MetadataValue]) -> dict[str, MetadataValue]:
        for name, value in metadata.items():
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_SAFE_INTEGER:
                raise ValueError(f"metadata[{name!r}]: integers are limited to ±{_MAX_SAFE_INTEGER}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"metadata[{name!r}]: numbers must be finite")
        return metadata

    def speakers_json(self) -> list[dict[str, Any]] | None:
        """The pins as stored on the job and given to the engine (`AnalysisOptions.from_request`)."""
        if self.speakers is None:
            return None
        return [speaker.model_dump(mode="json", exclude_none=True) for speaker in self.speakers]

    @model_validator(mode="before")
    @classmethod
    def _few_distinct_events(cls, data: Any) -> Any:
        # Checked before each item is parsed: a list of 200,000 entries is refused at once, not echoed in
        # every poll and webhook.
        events = data.get("webhook_events") if isinstance(data, dict) else None
        if isinstance(events, list):
            if len(events) > len(EVENT_TYPES):
                raise ValueError(f"webhook_events: at most {len(EVENT_TYPES)} events, each once")
            if len({repr(event) for event in events}) != len(events):
                raise ValueError("webhook_events: each event may be listed once")
        return data

    @model_validator(mode="after")
    def _one_source_each(self) -> DubCreate:
        for url, file_id in (("video_url", "video_file_id"), ("audio_url", "audio_file_id")):
            given = [name for name in (url, file_id) if getattr(self, name) is not None]
            if len(given) != 1:
                # `field` in the context puts the field in the problem's `loc` (app.core.errors).
                raise PydanticCustomError(
                    "missing" if not given else "value_error",
                    f"give exactly one of {url} and {file_id}",
                    {"field": file_id if given else url},
                )
        if self.webhook_url is not None and self.webhook_events == []:
            raise PydanticCustomError(
                "value_error",
                "an empty webhook_events list with a webhook_url would send nothing; leave it out for the "
                "defaults or name at least one event",
                {"field": "webhook_events"},
            )
        if len(self.metadata) > get_settings().metadata_max_keys:
            raise ValueError(f"metadata may have at most {get_settings().metadata_max_keys} keys")
        if any(len(key) > 40 for key in self.metadata) or any(
            isinstance(value, str) and len(value) > 500 for value in self.metadata.values()
        ):
            raise ValueError("metadata keys are at most 40 characters and values at most 500")
        return self


class DubInput(BaseModel):
    video_url: str | None
    audio_url: str | None
    video_file_id: uuid.UUID | None
    audio_file_id: uuid.UUID | None


STAGES = ["queued", "starting", "downloading", "probing", "analyzing", "rendering", "uploading", "done"]
STATUSES = ["queued", "processing", "succeeded", "failed", "canceled"]


class DubProgress(BaseModel):
    stage: str = Field(
        description="Where the dub is; a failed or canceled dub keeps the stage it stopped in.",
        json_schema_extra={"enum": [*STAGES, "succeeded", "failed", "canceled", "processing"]},
    )
    percent: float = Field(description="Of the current stage (0-100).")
    bytes_fetched: int | None = Field(
        None,
        description="Bytes of the inputs fetched from their URLs so far (also when a server declares no "
        "length, where `percent` cannot move); null until a download starts, and for uploaded files.",
    )


class DubOutput(BaseModel):
    url: str
    url_expires_at: datetime = Field(description="When this presigned `url` stops working (ask again).")
    expires_at: datetime = Field(
        description="When the output is deleted (`REDUB_RETENTION_DAYS` after the end)."
    )
    duration_s: float | None
    size_bytes: int | None


class DubError(BaseModel):
    code: str
    message: str
    retryable: bool


class DubLinks(BaseModel):
    self_: str = Field(alias="self", serialization_alias="self")
    cancel: str
    output: str
    webhook_deliveries: str

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)


class DubTiming(BaseModel):
    queued_s: float | None = Field(description="Seconds from creation until a worker started it.")
    processing_s: float | None = Field(description="Seconds from start to the end (so far, while running).")
    total_s: float | None = Field(description="Seconds from creation to the end; null until it ends.")
    stages_s: dict[str, float] | None = Field(
        description="Seconds per engine stage (probe, analyze, audio, render…) once the dub succeeded."
    )


class DubEta(BaseModel):
    seconds_left: float = Field(description="Estimated seconds until the dub ends.")
    completes_at: datetime = Field(description="When it is estimated to end.")
    based_on_dubs: int = Field(description="How many recently succeeded dubs the estimate comes from.")


class DubOut(BaseModel):
    id: uuid.UUID
    object: Literal["dub"] = "dub"
    status: str = Field(json_schema_extra={"enum": [*STATUSES]})
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    completed_at: datetime | None = Field(description="When it succeeded, failed or was canceled.")
    timing: DubTiming
    links: DubLinks
    sync_mode: str
    input: DubInput
    metadata: dict[str, MetadataValue]
    progress: DubProgress
    cancel_requested: bool
    output: DubOutput | None = Field(
        description="Once succeeded, until it expires; null after (`output_expired: true`)."
    )
    output_expired: bool
    error: DubError | None
    webhook_url: str | None
    webhook_events: list[str]
    speakers: list[dict[str, Any]] | None
    on_no_face: str
    model: str | None = Field(description="The model that renders the dub.")
    analysis: dict[str, Any] | None = Field(
        description="Scene analysis summary (speakers dubbed, face tracks, frames without a face, warnings) "
        "once the worker has analysed the video; null before, or when no analysis was needed."
    )
    frames_rendered: int | None = Field(description="Frames the renderer re-rendered; null until done.")
    media: dict[str, Any] | None = Field(
        description="The inputs' facts once the worker has probed them (kept when the dub then fails or is "
        "canceled): `video {size_bytes, duration_s, frame_rate, "
        "frame_count, width, height, rotation, codec, container}`, `audio {size_bytes, duration_s, codec, "
        "sample_rate, channels}`."
    )
    queue_position: int | None = Field(
        None,
        description="While queued, on `GET /v1/dubs/{id}`: 1 = next to start (all accounts' dubs count); "
        "null otherwise.",
    )
    eta: DubEta | None = Field(
        None,
        description="While queued or running, on `GET /v1/dubs/{id}`: an estimate of when it ends, from the "
        "processing times of the last 20 succeeded dubs (see the README); null without such history, or "
        "once a running dub has run longer than expected.",
    )


class Deleted(BaseModel):
    id: uuid.UUID
    object: Literal["dub", "file"]
    deleted: Literal[True] = True


class DubList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DubOut]
    next_cursor: str | None
    has_more: bool


def input_of(row: Any) -> DubInput:
    """The inputs as given, from a job or a preflight row."""
    return DubInput(
        video_url=row.video_url,
        audio_url=row.audio_url,
        video_file_id=row.video_file_id,
        audio_file_id=row.audio_file_id,
    )


def error_of(row: Any) -> DubError | None:
    """The error of a failed job or preflight row, if any."""
    if not row.error_code:
        return None
    return DubError(code=row.error_code, message=row.error_message or "", retryable=row.error_retryable)


def retained_until(start: datetime) -> datetime:
    """When an output or upload made at `start` is removed from storage."""
    return start + timedelta(days=get_settings().retention_days)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max((end - start).total_seconds(), 0.0), 3)


def _timing(job: Any, terminal: bool) -> DubTiming:
    end = job.finished_at if terminal else None
    # A running job's processing time is up to its last write (heartbeat or progress).
    return DubTiming(
        queued_s=_seconds(job.created_at, job.started_at or end),
        processing_s=_seconds(job.started_at, end or (None if terminal else job.updated_at)),
        total_s=_seconds(job.created_at, end),
        stages_s=job.stage_seconds,
    )


def dub_out(
    job: Job | Row[Any] | SimpleNamespace,
    storage: ObjectStorage,
    *,
    queue_position: int | None = None,
    eta: DubEta | None = None,
) -> DubOut:
    """The public view of a job; a succeeded job carries a fresh presigned output URL."""
    output = None
    if job.status == "succeeded" and job.output_key:
        url, url_expires_at = presigned_url_with_expiry(
            storage, job.output_key, get_settings().presign_ttl_s, filename=f"dub-{job.id}.mp4"
        )
        output = DubOutput(
            url=url,
            url_expires_at=url_expires_at,
            expires_at=retained_until(job.finished_at or job.updated_at),
            duration_s=job.output_duration_s,
            size_bytes=job.output_size,
        )
    stage = job.progress_stage or job.status
    terminal = job.status in ("succeeded", "failed", "canceled")
    base = f"{get_settings().public_base_url.rstrip('/')}/v1/dubs/{job.id}"
    return DubOut(
        id=job.id,
        status=job.status,
        created_at=job.created_at,
        updated_at=job.updated_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        completed_at=job.finished_at if terminal else None,
        timing=_timing(job, terminal),
        links=DubLinks(
            self_=base,  # type: ignore[call-arg]  # the field's Python name; `self` is its JSON name
            cancel=f"{base}/cancel",
            output=f"{base}/output",
            webhook_deliveries=f"{base}/webhook_deliveries",
        ),
        sync_mode=job.sync_mode,
        input=input_of(job),
        metadata=job.job_metadata,
        progress=DubProgress(
            stage=stage, percent=round(job.progress_percent, 1), bytes_fetched=job.progress_bytes
        ),
        cancel_requested=job.cancel_requested_at is not None,
        output=output,
        output_expired=job.status == "succeeded" and not job.output_key,
        error=error_of(job),
        webhook_url=job.webhook_url,
        webhook_events=job.webhook_events,
        speakers=job.speakers,
        on_no_face=job.on_no_face,
        model=job.model,
        analysis=job.analysis,
        frames_rendered=job.frames_rendered,
        media=job.media,
        queue_position=queue_position,
        eta=eta,
    )
