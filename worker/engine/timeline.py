"""The length plan: how a video and a dub track of different lengths become one output (`sync_mode`).

Every mode is a mapping from output frame to source frame, so the rest of the engine never special-cases it:
`cut_off` (the shorter of the two wins), `loop` (the video repeats), `bounce` (the video plays forward, then
backward, and so on), `silence` (the whole video is kept and the audio padded or cut), `remap` (the video is
retimed to the audio's length). The default, `auto`, never drops any of the dub audio and never drops video:
a video longer than the audio keeps its tail under silence (`silence`), a shorter one is extended by `bounce`,
which has no visible jump where a loop would restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Any

import numpy as np

from worker.engine.errors import INVALID_OPTION, EngineError
from worker.engine.probe import seconds_to_frames


class SyncMode(StrEnum):
    AUTO = "auto"
    CUT_OFF = "cut_off"
    LOOP = "loop"
    BOUNCE = "bounce"
    SILENCE = "silence"
    REMAP = "remap"


def parse_sync_mode(value: str) -> SyncMode:
    try:
        return SyncMode(value)
    except ValueError:
        known = ", ".join(mode.value for mode in SyncMode)
        raise EngineError(INVALID_OPTION, f"unknown sync_mode {value!r}; choose one of: {known}") from None


@dataclass(frozen=True)
class LengthPlan:
    requested: SyncMode
    mode: SyncMode  # what `auto` resolved to; equal to `requested` otherwise
    source_frames: int
    output_frames: int
    frame_rate: Fraction
    audio_seconds: float  # length of the dub audio
    audio_used_seconds: float  # how much of it plays (from its start)

    @property
    def output_seconds(self) -> float:
        return float(self.output_frames / self.frame_rate)

    @property
    def audio_padding_seconds(self) -> float:
        return max(0.0, self.output_seconds - self.audio_used_seconds)

    def source_indices(self, start: int, end: int) -> np.ndarray:
        """Source frame shown at each output frame in [start, end)."""
        output = np.arange(start, end, dtype=np.int64)
        count = self.source_frames
        if self.mode is SyncMode.REMAP:
            # Nearest source frame at the same relative time.
            return np.minimum(count - 1, (output * 2 + 1) * count // (2 * self.output_frames))
        if self.mode is SyncMode.BOUNCE and count > 1:
            period = 2 * count - 2
            phase = output % period
            return np.where(phase < count, phase, period - phase)
        return output % count  # identity while output < count; a loop after that

    def summary(self) -> dict[str, Any]:
        return {
            "requested": self.requested.value,
            "mode": self.mode.value,
            "source_frames": self.source_frames,
            "output_frames": self.output_frames,
            "frame_rate": float(self.frame_rate),
            "output_seconds": round(self.output_seconds, 6),
            "audio_seconds": round(self.audio_seconds, 6),
            "audio_used_seconds": round(self.audio_used_seconds, 6),
            "audio_padding_seconds": round(self.audio_padding_seconds, 6),
        }


def plan_length(
    requested: SyncMode, source_frames: int, frame_rate: Fraction, audio_seconds: float
) -> LengthPlan:
    audio_frames = seconds_to_frames(audio_seconds, frame_rate)
    mode = requested
    if requested is SyncMode.AUTO:
        mode = SyncMode.BOUNCE if audio_frames > source_frames else SyncMode.SILENCE
    if mode is SyncMode.CUT_OFF:
        output_frames = min(source_frames, audio_frames)
    elif mode is SyncMode.SILENCE:
        output_frames = source_frames
    else:  # loop, bounce and remap follow the audio
        output_frames = audio_frames
    output_seconds = float(output_frames / frame_rate)
    return LengthPlan(
        requested=requested,
        mode=mode,
        source_frames=source_frames,
        output_frames=output_frames,
        frame_rate=frame_rate,
        audio_seconds=audio_seconds,
        audio_used_seconds=min(audio_seconds, output_seconds),
    )
