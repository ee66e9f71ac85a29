"""The project's own face model finds the generated face and measures the mouth the truth says."""

from __future__ import annotations

import numpy as np

from model.synth import SynthPair
from worker.engine.analysis.face_detector import FaceDetector
from worker.engine.analysis.face_landmarks import (
    KEPT,
    LEFT_EYE_OUTER,
    LOWER_LIP_INNER,
    RIGHT_EYE_OUTER,
    UPPER_LIP_INNER,
    LandmarkModel,
    region_from_detection,
    region_from_points,
)


def test_face_model_tracks_the_rendered_opening(clean_pair: SynthPair) -> None:
    clip = clean_pair.target
    detections = FaceDetector().detect(clip.frames[0])
    assert detections, "the detector finds the generated face"
    model = LandmarkModel()
    found = model.run(clip.frames[0], region_from_detection(detections[0].box, detections[0].keypoints))
    assert found is not None
    measured = []
    for index in range(len(clip.frames)):
        found = model.run(clip.frames[index], region_from_points(found.points))
        assert found is not None, index
        gap = np.linalg.norm(found.points[LOWER_LIP_INNER] - found.points[UPPER_LIP_INNER])
        measured.append(gap / np.linalg.norm(found.points[LEFT_EYE_OUTER] - found.points[RIGHT_EYE_OUTER]))
    assert np.corrcoef(measured, clip.opening)[0, 1] > 0.8
    # Where the model puts the lips is where they were drawn.
    drawn = clip.landmarks[-1][list(KEPT)]
    assert np.median(np.linalg.norm(found.points - drawn, axis=1)) < 0.1 * np.linalg.norm(
        drawn[LEFT_EYE_OUTER] - drawn[RIGHT_EYE_OUTER]
    )
