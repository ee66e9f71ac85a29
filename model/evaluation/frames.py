"""Decoded frames exactly as the engine sees them, one at a time.

Source, output and truth all go through the engine's own path (its frame reader, 4:2:0 planes, its YUV->RGB
conversion, turned upright), so a pixel the engine left alone reads back identical in the source and the
output whatever pixel format the source was stored in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from worker.engine.compositing import ColourSpace, to_upright
from worker.engine.probe import Limits, probe_video
from worker.engine.video_io import FrameReader

_NO_LIMITS = Limits(max_duration_s=float("inf"), max_frames=10**9, max_pixels=10**9)


def engine_rgb_frames(path: Path) -> Iterator[np.ndarray]:
    """(height, width, 3) uint8 upright RGB frames of a video, in order."""
    info = probe_video(path, _NO_LIMITS)
    colours = ColourSpace(info.colorspace, info.color_range, info.height, info.pix_fmt)
    with FrameReader(path, info, keep_recent=1) as reader:
        for index in range(info.frame_count):
            (planes,) = reader.read(np.array([index]))
            yield np.ascontiguousarray(to_upright(colours.to_rgb(planes), info.rotation))
