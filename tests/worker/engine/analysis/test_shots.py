"""Cuts are found at the exact frame, and camera motion or a passing object does not cut."""

from __future__ import annotations

import numpy as np

from tests.worker.engine.analysis.footage import background
from worker.engine.analysis.shots import ShotDetector


def _cuts(frames: list[np.ndarray]) -> list[int]:
    detector = ShotDetector()
    return [index for index, frame in enumerate(frames) if detector.is_cut(frame)]


def test_cuts_at_the_exact_frames() -> None:
    rooms = [background(64, 36, seed=seed) for seed in (1, 2, 3)]
    frames = [np.roll(rooms[0], index, axis=1) for index in range(10)]
    frames += [np.roll(rooms[1], index, axis=1) for index in range(7)]
    frames += [np.roll(rooms[2], index, axis=0) for index in range(9)]
    assert _cuts(frames) == [10, 17]


def test_pans_fades_and_passing_objects_do_not_cut() -> None:
    room = background(64, 36, seed=4)
    frames = []
    for index in range(40):
        frame = np.roll(room, 2 * index, axis=1).astype(np.float32) * (1.0 - index / 80)
        frame[10:20, (index * 3) % 50 : (index * 3) % 50 + 8] = 255  # a small object crossing
        frames.append(frame.astype(np.uint8))
    assert _cuts(frames) == []
