"""Hard cut detection, one frame at a time (streaming, frame-accurate).

A frame starts a new shot when its colour histogram jumps far above the recent frame-to-frame change and its
thumbnail differs too, so camera motion, flashes of small objects and noise do not cut but a change of scene
does. The decision for frame i uses only frames <= i, so cuts are known while decoding.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

_THUMBNAIL = (32, 18)
_MIN_HISTOGRAM_JUMP = 0.35  # L1 distance of normalised histograms, in [0, 2]
_MIN_PIXEL_JUMP = 18.0  # mean absolute difference of thumbnails, in 8-bit levels
_JUMP_OVER_RECENT = 3.0
_MIN_SHOT_FRAMES = 4


class ShotDetector:
    def __init__(self) -> None:
        self._previous_histogram: np.ndarray | None = None
        self._previous_thumbnail: np.ndarray | None = None
        self._recent: deque[float] = deque(maxlen=12)
        self._frames_in_shot = 0

    def is_cut(self, small_frame: np.ndarray) -> bool:
        """Feed the next frame (RGB uint8, any small size); True if it starts a new shot (never frame 0)."""
        thumbnail = cv2.resize(small_frame, _THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.float32)
        hsv = cv2.cvtColor(small_frame, cv2.COLOR_RGB2HSV)
        histogram: np.ndarray = cv2.calcHist(
            [hsv], [0, 1, 2], None, [12, 4, 4], [0, 180, 0, 256, 0, 256]
        ).ravel()
        histogram = histogram / max(float(histogram.sum()), 1.0)
        cut = False
        if self._previous_histogram is not None and self._previous_thumbnail is not None:
            jump = float(np.abs(histogram - self._previous_histogram).sum())
            pixel_jump = float(np.abs(thumbnail - self._previous_thumbnail).mean())
            recent = float(np.mean(self._recent)) if self._recent else 0.0
            cut = (
                self._frames_in_shot >= _MIN_SHOT_FRAMES
                and jump > _MIN_HISTOGRAM_JUMP
                and jump > _JUMP_OVER_RECENT * recent
                and pixel_jump > _MIN_PIXEL_JUMP
            )
            self._recent.append(jump)
        self._previous_histogram, self._previous_thumbnail = histogram, thumbnail
        if cut:
            self._recent.clear()
            self._frames_in_shot = 0
        self._frames_in_shot += 1
        return cut
