"""The length plan: how a video and a dub track of different lengths become one output (`sync_mode`).

Every mode is a mapping from output frame to source frame, so the rest of the engine never special-cases it:
`cut_off` (the shorter of the two wins), `loop` (the video repeats), `bounce` (the video plays forward, then
backward, and so on), `silence` (the whole video is kept and the audio padded or cut), `remap` (the video is
retimed to the audio's length). The default, `auto`, never drops any of the dub audio and never drops video:
a video longer than the audio keeps its tail under silence (`silence`), a shorter one is extended by `bounce`,
which has no visible jump where a loop would restart.

The plan also owns the output clock (when each output frame starts), and its lengths are read from that
clock: a variable-frame-rate source (an animated GIF holding its first picture, a phone video) keeps its own
timestamps, so counting frames at the average rate would promise a length the file does not have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any

import numpy as np

from worker.engine.errors import INVALID_OPTION, EngineError


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


class OutputClock:
    """Output timestamps: the source's own where output frame i is source frame i, evenly spaced elsewhere.

    Output frame i lasts until frame i + 1 starts, so n frames end where frame n would start: the source's
    last frame keeps its own duration, and frames past the source's end follow at the frame rate.
    """

    def __init__(
        self,
        frame_rate: Fraction,
        time_base: Fraction | None,
        source_timestamps: np.ndarray | None = None,
        last_frame_ticks: int | None = None,
    ) -> None:
        # Keep the source's time base when it can tell frames apart, so its timestamps carry over exactly.
        fine = time_base is not None and time_base <= 1 / (2 * frame_rate)
        self.time_base = time_base if fine and time_base is not None else Fraction(1, 90000)
        self._step = 1 / (frame_rate * self.time_base)
        self._source: np.ndarray | None = None
        # Frames from `_tail_from` on start at `_tail_start` and follow every `_step`.
        self._tail_from, self._tail_start = 0, 0
        if source_timestamps is not None and len(source_timestamps) and time_base is not None:
            scale = time_base / self.time_base
            self._source = np.rint(source_timestamps.astype(np.float64) * float(scale)).astype(np.int64)
            last = len(self._source) - 1
            self._tail_from, self._tail_start = last, int(self._source[last])
            if last_frame_ticks:  # the source's end is known: the tail starts there
                self._tail_from = last + 1
                self._tail_start += round(last_frame_ticks * scale)

    def pts(self, index: int) -> int:
        """Start of output frame `index`, in `time_base`."""
        if self._source is not None and index < self._tail_from:
            return int(self._source[index])
        return self._tail_start + round((index - self._tail_from) * self._step)

    def frames_lasting(self, seconds: float) -> int:
        """The frame count (at least 1) whose end lies nearest `seconds`; a tie takes the longer."""
        target = Fraction(seconds) / self.time_base  # exact: a half frame is a tie, not a rounding error
        # Python ints only: a Fraction compared with numpy's int64 multiplies in int64 and can overflow.
        if self._source is not None and target <= int(self._source[-1]):
            guess = int(np.searchsorted(self._source, float(target)))  # first frame starting at or after it
        else:
            guess = self._tail_from + max(0, math.ceil((target - self._tail_start) / self._step))
        candidates = [count for count in (guess - 1, guess, guess + 1) if count >= 1]
        return min(candidates, key=lambda count: (abs(self.pts(count) - target), -count))

    def seconds(self, frames: int) -> float:
        """Output time at which frame `frames` starts: the end of a video of that many frames."""
        return float(self.pts(frames) * self.time_base)


@dataclass(frozen=True)
class LengthPlan:
    requested: SyncMode
    mode: SyncMode  # what `auto` resolved to; equal to `requested` otherwise
    source_frames: int
    output_frames: int
    frame_rate: Fraction
    audio_seconds: float  # length of the dub audio
    audio_used_seconds: float  # how much of it plays (from its start)
    clock: OutputClock = field(repr=False, compare=False)

    @property
    def output_seconds(self) -> float:
        return self.clock.seconds(self.output_frames)

    @property
    def output_frame_rate(self) -> float:
        """Frames per second over the whole output (what a player reports as its average rate)."""
        return self.output_frames / self.output_seconds

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
            "output_frame_rate": round(self.output_frame_rate, 6),
            "output_seconds": round(self.output_seconds, 6),
            "audio_seconds": round(self.audio_seconds, 6),
            "audio_used_seconds": round(self.audio_used_seconds, 6),
            "audio_padding_seconds": round(self.audio_padding_seconds, 6),
        }


def plan_length(
    requested: SyncMode,
    source_frames: int,
    frame_rate: Fraction,
    audio_seconds: float,
    *,
    time_base: Fraction | None = None,
    timestamps: np.ndarray | None = None,
    last_frame_ticks: int | None = None,
) -> LengthPlan:
    """The plan for a source of `source_frames` frames; `timestamps` (in `time_base`, from 0) are its own
    frame times and `last_frame_ticks` how long its last frame lasts, kept by every mode but `remap`."""
    kept = OutputClock(frame_rate, time_base, timestamps, last_frame_ticks)
    mode = requested
    if requested is SyncMode.AUTO:
        mode = SyncMode.BOUNCE if kept.frames_lasting(audio_seconds) > source_frames else SyncMode.SILENCE
    clock = OutputClock(frame_rate, time_base) if mode is SyncMode.REMAP else kept
    audio_frames = clock.frames_lasting(audio_seconds)
    if mode is SyncMode.CUT_OFF:
        output_frames = min(source_frames, audio_frames)
    elif mode is SyncMode.SILENCE:
        output_frames = source_frames
    else:  # loop, bounce and remap follow the audio
        output_frames = audio_frames
    output_seconds = clock.seconds(output_frames)
    return LengthPlan(
        requested=requested,
        mode=mode,
        source_frames=source_frames,
        output_frames=output_frames,
        frame_rate=frame_rate,
        audio_seconds=audio_seconds,
        audio_used_seconds=min(audio_seconds, output_seconds),
        clock=clock,
    )
