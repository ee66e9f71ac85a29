"""What a request may say about analysis: the no-face policy and which people to dub."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.engine.errors import INVALID_OPTION, EngineError

ON_NO_FACE = ("passthrough", "fail")


@dataclass(frozen=True)
class PinBox:
    frame: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class SpeakerPin:
    """One person to dub, named by exactly one of: a track id, a point on their face, or boxes around it."""

    track_id: int | None = None
    point: tuple[int, float, float] | None = None  # (frame, x, y) in display pixels
    boxes: tuple[PinBox, ...] = ()

    @classmethod
    def from_dict(cls, value: Any) -> SpeakerPin:
        if not isinstance(value, dict):
            raise EngineError(INVALID_OPTION, f"a speaker must be an object, got {value!r}")
        given = [key for key in ("track_id", "point", "boxes") if value.get(key) is not None]
        if len(given) != 1:
            raise EngineError(INVALID_OPTION, "a speaker needs exactly one of track_id, point or boxes")
        try:
            if given == ["track_id"]:
                track_id = value["track_id"]
                if isinstance(track_id, bool) or not isinstance(track_id, int) or track_id < 0:
                    raise ValueError("track_id must be a whole number >= 0")
                return cls(track_id=track_id)
            if given == ["point"]:
                point = value["point"]
                return cls(point=(_frame(point["frame"]), float(point["x"]), float(point["y"])))
            boxes = tuple(
                PinBox(
                    _frame(box["frame"]),
                    float(box["x"]),
                    float(box["y"]),
                    float(box["width"]),
                    float(box["height"]),
                )
                for box in value["boxes"]
            )
            if not boxes or any(box.width <= 0 or box.height <= 0 for box in boxes):
                raise ValueError("boxes must be a non-empty list with positive width and height")
            return cls(boxes=boxes)
        except (KeyError, TypeError, ValueError) as error:
            raise EngineError(INVALID_OPTION, f"bad speaker {value!r}: {error}") from error


def _frame(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"frame must be a whole number >= 0, got {value!r}")
    return value


@dataclass(frozen=True)
class AnalysisOptions:
    on_no_face: str = "passthrough"
    speakers: tuple[SpeakerPin, ...] | None = None  # None: dub whoever speaks
    # When nobody speaks in the source (a still image, a voice-over), dub the most prominent face per shot.
    fallback_to_prominent_face: bool = True
    detect_interval: int = 10  # frames between full detector scans
    max_gap_s: float = 0.5  # how long a lost face is searched for and interpolated over
    analysis_long_side: int = (
        1280  # frames are analysed at most this large (coordinates stay in display pixels)
    )
    landmark_threads: int = 1
    # Faces are measured at about this rate and interpolated between (0: every frame). 12.5 Hz follows
    # syllables (~4-6 Hz) and halves the cost at 25 fps.
    landmark_rate_hz: float = 12.5

    @property
    def constrains_the_dub(self) -> bool:
        """The request pins speakers or refuses faceless frames: analysis must run even for a renderer
        that changes no pixel, so that the request fails or reports the same way whatever renders it."""
        return self.speakers is not None or self.on_no_face == "fail"

    def landmark_stride(self, frame_rate: float) -> int:
        if self.landmark_rate_hz <= 0:
            return 1
        return max(1, round(frame_rate / self.landmark_rate_hz))

    def __post_init__(self) -> None:
        if self.on_no_face not in ON_NO_FACE:
            raise EngineError(INVALID_OPTION, f"on_no_face must be one of {', '.join(ON_NO_FACE)}")
        if (
            self.detect_interval < 1
            or self.analysis_long_side < 64
            or self.max_gap_s < 0
            or self.landmark_rate_hz < 0
        ):
            raise EngineError(INVALID_OPTION, "detect_interval, analysis_long_side or max_gap_s out of range")

    @classmethod
    def from_request(
        cls, on_no_face: str | None = None, speakers: list[Any] | None = None
    ) -> AnalysisOptions:
        """From a job's `on_no_face` and `speakers` fields as the API receives them."""
        pins = None if speakers is None else tuple(SpeakerPin.from_dict(item) for item in speakers)
        if pins is not None and not pins:
            pins = None
        return cls(on_no_face=on_no_face or "passthrough", speakers=pins)
