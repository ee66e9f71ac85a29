"""Segment planning: cut the output timeline into pieces a renderer can take one at a time.

Segments hold 1+4k frames (what a causal 3D VAE with 4x temporal compression needs), never cross a shot cut,
and overlap their neighbours inside a shot so that seams can be blended.
"""

from __future__ import annotations

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


def plan_segments(
    frame_count: int, max_frames: int = 81, overlap: int = 8, cuts: Sequence[int] = ()
) -> list[Segment]:
    """Cover output frames [0, frame_count) with segments of 1+4k frames.

    `cuts` are output frames where a new shot starts; no segment crosses one. Inside a shot, consecutive
    segments share at least `overlap` frames (fewer only when the shot is shorter than two segments' worth);
    the last segment of a shot is moved back so that it ends exactly on the shot's last frame.
    """
    if frame_count < 1:
        raise EngineError(INVALID_OPTION, "nothing to plan: the output has no frames")
    if max_frames < 1 or (max_frames - 1) % 4:
        raise EngineError(INVALID_OPTION, f"segment length must be 1+4k frames, got {max_frames}")
    if not 0 <= overlap < max_frames:
        raise EngineError(INVALID_OPTION, f"overlap must be in [0, {max_frames}), got {overlap}")
    boundaries = sorted({0, frame_count, *(cut for cut in cuts if 0 < cut < frame_count)})
    segments: list[Segment] = []
    for shot, (shot_start, shot_end) in enumerate(zip(boundaries, boundaries[1:], strict=False)):
        for start, end in _cover_shot(shot_end - shot_start, max_frames, overlap):
            segments.append(Segment(len(segments), shot_start + start, shot_start + end, shot))
    return segments


def _cover_shot(length: int, max_frames: int, overlap: int) -> list[tuple[int, int]]:
    size = largest_valid_length(min(max_frames, length))
    if size == length:
        return [(0, length)]
    # Never step by less than half a segment: short shots get less overlap rather than many segments.
    stride = max(size - overlap, (size + 1) // 2)
    starts = list(range(0, length - size, stride)) + [length - size]
    return [(start, start + size) for start in starts]
