"""The API's JSON resources as typed models. Unknown fields are kept (`extra="allow"`), so a newer server
never breaks an older client."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

DubStatus = Literal["queued", "processing", "succeeded", "failed", "canceled"]
PreflightStatus = Literal["queued", "processing", "succeeded", "failed"]
SyncMode = Literal["auto", "cut_off", "loop", "bounce", "silence", "remap"]
OnNoFace = Literal["passthrough", "fail"]
EventType = Literal["dub.succeeded", "dub.failed", "dub.canceled", "dub.progress"]
MetadataValue = str | int | float | bool | None

DUB_TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})
PREFLIGHT_TERMINAL: frozenset[str] = frozenset({"succeeded", "failed"})


class _Resource(BaseModel):
    model_config = ConfigDict(extra="allow")


class DubInput(_Resource):
    video_url: str | None = None
    audio_url: str | None = None
    video_file_id: uuid.UUID | None = None
    audio_file_id: uuid.UUID | None = None


class DubProgress(_Resource):
    stage: str
    percent: float


class DubOutput(_Resource):
    url: str
    expires_at: datetime
    duration_s: float | None = None
    size_bytes: int | None = None


class JobError(_Resource):
    """Why a dub or preflight failed: the engine's or the fetcher's stable `code`."""

    code: str
    message: str
    retryable: bool


class DubData(_Resource):
    """A dub job as the API returns it (`GET /v1/dubs/{id}`)."""

    id: uuid.UUID
    object: Literal["dub"] = "dub"
    status: DubStatus
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    sync_mode: str
    input: DubInput
    metadata: dict[str, MetadataValue]
    progress: DubProgress
    cancel_requested: bool
    output: DubOutput | None = None
    error: JobError | None = None
    webhook_url: str | None = None
    webhook_events: list[str]
    speakers: list[dict[str, Any]] | None = None
    on_no_face: str
    model: str | None = None
    analysis: dict[str, Any] | None = None
    frames_rendered: int | None = None

    @property
    def done(self) -> bool:
        """Whether the dub reached a terminal status (succeeded, failed or canceled)."""
        return self.status in DUB_TERMINAL


class PreflightData(_Resource):
    """A preflight (`GET /v1/dubs/preflight/{id}`): once succeeded, its `report`."""

    id: uuid.UUID
    object: Literal["dub_preflight"] = "dub_preflight"
    status: PreflightStatus
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    sync_mode: str
    input: DubInput
    speakers: list[dict[str, Any]] | None = None
    on_no_face: str
    report: dict[str, Any] | None = None
    error: JobError | None = None

    @property
    def done(self) -> bool:
        return self.status in PREFLIGHT_TERMINAL


class File(_Resource):
    """An uploaded file (`POST /v1/files`); its `id` goes in a dub's `video_file_id` / `audio_file_id`."""

    id: uuid.UUID
    object: Literal["file"] = "file"
    filename: str
    content_type: str
    size_bytes: int
    created_at: datetime


class Model(_Resource):
    """A model a dub can name (`GET /v1/models`)."""

    id: str
    object: Literal["model"] = "model"
    default: bool
    renderer: str
    description: str
    config: str | None = None
    trained: bool | None = None
    created_at: str | None = None
    eval: dict[str, Any] | None = None


class SpeakerPoint(BaseModel):
    frame: int
    x: float
    y: float


class SpeakerBox(BaseModel):
    frame: int
    x: float
    y: float
    width: float
    height: float


class Speaker(BaseModel):
    """Who to dub: exactly one of a track id (from a preflight), a point on the face, or boxes around it."""

    track_id: int | None = None
    point: SpeakerPoint | None = None
    boxes: list[SpeakerBox] | None = None
