"""Following the speaker through face tracks: the right face, frame by frame, never the listener."""

from __future__ import annotations

import numpy as np

from model.evaluation.mouth import box_iou, landmark_boxes, speaker_opening
from worker.engine.analysis.face_landmarks import (
    KEPT,
    LEFT_EYE_OUTER,
    LOWER_LIP_INNER,
    RIGHT_EYE_OUTER,
    UPPER_LIP_INNER,
)
from worker.engine.analysis.tracks import FaceTrack


def _face(left: float, openings: np.ndarray) -> np.ndarray:
    """(frames, kept points, 2): a 100 px face at x = left, inner lips apart by `openings` x eye distance."""
    frames = len(openings)
    points = np.zeros((frames, len(KEPT), 2), dtype=np.float32)
    points[:, :, 0] = np.linspace(left, left + 100, len(KEPT))
    points[:, :, 1] = np.linspace(100, 200, len(KEPT))
    points[:, RIGHT_EYE_OUTER] = (left + 25, 130)
    points[:, LEFT_EYE_OUTER] = (left + 75, 130)  # eye distance 50
    points[:, UPPER_LIP_INNER] = np.stack([np.full(frames, left + 50), np.full(frames, 170)], axis=1)
    points[:, LOWER_LIP_INNER] = np.stack([np.full(frames, left + 50), 170 + 50 * openings], axis=1)
    return points


def _track(track_id: int, first: int, points: np.ndarray) -> FaceTrack:
    span = len(points)
    return FaceTrack(
        id=track_id,
        shot=0,
        first_frame=first,
        detected=np.ones(span, dtype=bool),
        present=np.ones(span, dtype=bool),
        points=points,
        pose=np.zeros((span, 3), dtype=np.float32),
        quality=np.ones(span, dtype=np.float32),
    )


def test_the_speakers_track_is_followed_across_a_new_id() -> None:
    speaking = np.linspace(0.0, 0.3, 20)
    silent = np.zeros(20)
    speaker = _face(0, speaking)
    listener = _face(300, silent)
    # The speaker's track breaks at frame 12 and comes back under another id; the listener is always there.
    tracks = [_track(0, 0, speaker[:12]), _track(1, 0, listener), _track(2, 12, speaker[12:])]
    opening = speaker_opening(tracks, 20, speaker)
    np.testing.assert_allclose(opening, speaking, atol=1e-5)
    # Where the speaker is nowhere (only the listener is), nothing is measured.
    assert np.isnan(speaker_opening([tracks[1]], 20, speaker)).all()


def test_boxes_and_iou() -> None:
    points = np.array([[[0, 0], [10, 20]], [[np.nan, 0], [1, 1]]], dtype=np.float32)
    boxes = landmark_boxes(points)
    np.testing.assert_array_equal(boxes[0], [0, 0, 10, 20])
    assert np.isnan(boxes[1]).all()
    first = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], dtype=np.float64)
    second = np.array([[5, 0, 15, 10], [np.nan] * 4])
    np.testing.assert_allclose(box_iou(first, second), [50 / 150, 0.0])
