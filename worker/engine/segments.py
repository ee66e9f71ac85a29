"""Segment planning: cut the output timeline into pieces a renderer can take one at a time.

Segments hold 1+4k frames (what a causal 3D VAE with 4x temporal compression needs), never cross a shot cut,
and overlap their neighbours inside a shot so that seams can be blended.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from worker.engine.errors import INVALID_OPTION, EngineError


@dataclass(frozen=True)
class Segment:
    index: int
    start: int  # first output frame
    end: int  # one past the last output frame
    shot: int  # index of the shot the segment lies in

    @property
    def frame_count(self) -> int:
        return self.end - self.start


def largest_valid_length(limit: int) -> int:
    """The largest 1+4k that is <= limit (limit >= 1)."""
    return 1 + 4 * ((limit - 1) // 4)


def smallest_valid_length(minimum: int) -> int:
    """The smallest 1+4k that is >= minimum."""
    return 1 + 4 * math.ceil(max(0, minimum - 1) / 4)


def plan_segments(
    frame_count: int, max_frames: int = 81, overlap: int = 8, cuts: Sequence[int] = ()
) -> list[Segment]:
    """Cover output frames [0, frame_count) with segments of 1+4k frames.

    `cuts` are output frames where a new shot starts; no segment crosses one. Inside a shot, consecutive
    segments share at least `overlap` frames (fewer only in shots shorter than two segments), and segments are
    spread evenly so that the first starts on the shot's first frame and the last ends on its last.
    """
    if frame_count < 1:
        raise EngineError(INVALID_OPTION, "nothing to plan: the output has no frames")
    if max_frames < 1 or (max_frames - 1) % 4:
        raise EngineError(INVALID_OPTION, f"segment length must be 1+4k frames, got {max_frames}")
    if not 0 <= overlap < max_frames:
        raise EngineError(INVALID_OPTION, f"overlap must be in [0, {max_frames}), got {overlap}")
    boundaries = sorted({0, frame_count, *(cut for cut in cuts if 0 < cut < frame_count)})
    segments: list[Segment] = []
    for shot, (shot_start, shot_end) in enumerate(itertools.pairwise(boundaries)):
        for start, end in _cover_shot(shot_end - shot_start, max_frames, overlap):
            segments.append(Segment(len(segments), shot_start + start, shot_start + end, shot))
    return segments


def _cover_shot(length: int, max_frames: int, overlap: int) -> list[tuple[int, int]]:
    largest = largest_valid_length(min(max_frames, length))
    if largest == length:
        return [(0, length)]
    # Short shots get less overlap rather than many segments.
    overlap = min(overlap, (largest - 1) // 2)
    count = math.ceil((length - overlap) / (largest - overlap))
    # The shortest 1+4k size that covers the shot with `count` evenly spread segments: no segment is
    # rendered almost twice, as happens when a last full-size segment is pushed back to fit.
    size = min(largest, smallest_valid_length(math.ceil((length + (count - 1) * overlap) / count)))
    step = (length - size) / (count - 1)
    starts = sorted({round(index * step) for index in range(count)})
    return [(start, start + size) for start in starts]
