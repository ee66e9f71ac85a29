"""Conditions: named switches that change how a scene is shot, identically for source and target.

A condition can change the scene before any clip is drawn (placement, head turns, a second person) through
`configure`, and adds per-frame `Effects`: layers in front of the face (`front`, returning the pixels it
covers) and whole-frame effects (`finish`). Effects depend only on the scene and the frame index, never on
the mouth, so source and target get exactly the same ones.
"""

from __future__ import annotations

import numpy as np


class Effects:
    """No effect at all (the `clean` condition)."""

    has_occluder = False
    has_listener = False

    def front(self, frame: np.ndarray, index: int) -> np.ndarray | None:
        """Draw layers in front of the face into `frame`; the (H, W) bool pixels they cover, or None."""
        return None

    def listener_pixels(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def finish(self, frame: np.ndarray, index: int) -> None:
        """Whole-frame effects, in place."""
