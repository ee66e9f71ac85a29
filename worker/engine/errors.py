"""Errors the engine raises for bad input or failed work, each with a stable code."""

from __future__ import annotations


class EngineError(Exception):
    """A failure the caller can act on: `code` is stable, `message` is for a person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


# Stable codes, shared with the API's job errors.
INVALID_MEDIA = "invalid_media"
NO_VIDEO_STREAM = "no_video_stream"
NO_AUDIO_STREAM = "no_audio_stream"
MEDIA_TOO_LONG = "media_too_long"
MEDIA_TOO_LARGE = "media_too_large"
INVALID_OPTION = "invalid_option"
INPUT_NOT_FOUND = "input_not_found"
OUTPUT_FAILED = "output_failed"
CANCELED = "canceled"
RENDERER_FAILED = "renderer_failed"
NO_FACE = "no_face"  # on_no_face=fail and some frames have no usable face
SPEAKER_NOT_FOUND = "speaker_not_found"  # a pinned speaker matches no face track
MODEL_UNAVAILABLE = "model_unavailable"  # a model file is missing or its checksum is wrong
DEADLINE_EXCEEDED = "deadline_exceeded"  # the job outlived REDUB_JOB_DEADLINE_S (given by the tasks)
