"""The renderer interface: the one place where a model changes pixels.

The engine hands a renderer one segment at a time: upright RGB frames, the masks of the region it may change,
and the dub audio. The renderer returns frames of the same shape; the engine then composites only the masked
region back onto the source, so pixels outside the mask stay the source's exactly whatever a renderer returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from worker.engine.segments import Segment

AUDIO_SAMPLE_RATE = 16_000  # the rate of SegmentInput.audio


@dataclass
class SegmentInput:
    segment: Segment
    frames: np.ndarray  # (frames, height, width, 3) uint8 RGB, upright
    masks: np.ndarray  # (frames, height, width) float32 in [0, 1]: where the renderer may change pixels
    audio: np.ndarray  # the whole dub track, mono float32 at AUDIO_SAMPLE_RATE (memory-mapped)
    audio_start: int  # sample of `audio` that plays with the segment's first frame
    frame_rate: float
    # The previous segment's rendered frames that overlap this one (same shot only), for motion continuity.
    previous_frames: np.ndarray | None = None
    # True once the dub is canceled: a renderer that takes long over a segment asks it as it goes and
    # raises EngineError(CANCELED), so a cancel never waits for a whole segment to render.
    should_cancel: Callable[[], bool] | None = None


class Renderer(Protocol):
    name: str
    # False for renderers that never change a pixel: the engine then skips scene analysis altogether.
    changes_pixels: bool

    def render(self, segment: SegmentInput) -> np.ndarray:
        """Return (frames, height, width, 3) uint8 RGB frames for the segment.

        Inside the mask's support they are the rendering itself, not yet blended with the source: the engine
        blends by the mask, once.
        """
        ...
