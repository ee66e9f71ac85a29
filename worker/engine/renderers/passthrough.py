"""The `passthrough` renderer: changes nothing, so a dub is audio-only."""

from __future__ import annotations

import numpy as np

from worker.engine.renderers.base import SegmentInput


class PassthroughRenderer:
    """Leaves every frame as it is: the result is an audio-only dub."""

    name = "passthrough"
    changes_pixels = False

    def render(self, segment: SegmentInput) -> np.ndarray:
        return segment.frames
