"""Detector and mesh on the astronaut photo: found where she is, also small, rotated, dark; not in noise."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from worker.engine.analysis.face_detector import FaceDetector
from worker.engine.analysis.face_landmarks import (
    LOWER_LIP_INNER,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    UPPER_LIP_INNER,
    LandmarkModel,
    region_from_detection,
)

# The astronaut's face in the 512x512 photo, and her mouth's corners (measured by hand).
FACE_BOX = (175, 75, 275, 180)
MOUTH = (np.array([203.0, 139.0]), np.array([245.0, 141.0]))


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def mesh() -> LandmarkModel:
    return LandmarkModel()


def test_the_face_and_its_mouth_are_found(detector: FaceDetector, mesh: LandmarkModel) -> None:
    photo = skimage.data.astronaut()
    detections = detector.detect(photo)
    assert len(detections) == 1
    x0, y0, x1, y1 = detections[0].box
    assert abs(x0 - FACE_BOX[0]) < 15 and abs(y0 - FACE_BOX[1]) < 20
    assert abs(x1 - FACE_BOX[2]) < 15 and abs(y1 - FACE_BOX[3]) < 20
    landmarks = mesh.run(photo, region_from_detection(detections[0].box, detections[0].keypoints))
    assert landmarks is not None and landmarks.presence > 0.9
    assert np.linalg.norm(landmarks.points[MOUTH_RIGHT] - MOUTH[0]) < 6
    assert np.linalg.norm(landmarks.points[MOUTH_LEFT] - MOUTH[1]) < 6
    # Lips closed: the inner-lip gap is a few pixels.
    assert np.linalg.norm(landmarks.points[LOWER_LIP_INNER] - landmarks.points[UPPER_LIP_INNER]) < 10
    assert abs(landmarks.yaw) < 15 and abs(landmarks.roll) < 10


def test_a_small_face_in_a_wide_frame_is_found_by_tiles(detector: FaceDetector) -> None:
    frame = np.full((720, 1280, 3), 110, np.uint8)
    frame[400:656, 900:1156] = cv2.resize(skimage.data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    # The face is ~50 px high: too small for the whole-frame pass, found on a tile.
    assert not detector.detect(frame, levels=[0])
    found = detector.detect(frame)
    expected_x = 900 + 225 * 0.5  # the face centre at half scale
    assert any(abs((d.box[0] + d.box[2]) / 2 - expected_x) < 15 for d in found)


def test_a_sideways_face_gets_its_roll(detector: FaceDetector, mesh: LandmarkModel) -> None:
    turned = np.ascontiguousarray(np.rot90(skimage.data.astronaut()))
    detection = max(detector.detect(turned), key=lambda item: item.score)
    landmarks = mesh.run(turned, region_from_detection(detection.box, detection.keypoints))
    assert landmarks is not None
    assert abs(abs(landmarks.roll) - 90) < 15


def test_a_dark_face_is_still_followed(mesh: LandmarkModel, detector: FaceDetector) -> None:
    photo = skimage.data.astronaut()
    detection = detector.detect(photo)[0]
    region = region_from_detection(detection.box, detection.keypoints)
    dark = (photo.astype(np.float32) * 0.15).astype(np.uint8)
    landmarks = mesh.run(dark, region)
    assert landmarks is not None
    assert np.linalg.norm(landmarks.points[MOUTH_RIGHT] - MOUTH[0]) < 8


def test_noise_has_no_face(detector: FaceDetector, mesh: LandmarkModel) -> None:
    noise = np.random.default_rng(0).integers(0, 256, size=(360, 640, 3), dtype=np.uint8)
    assert detector.detect(noise) == []
    photo = skimage.data.astronaut()
    detection = detector.detect(photo)[0]
    assert (
        mesh.run(noise[:512, :512].copy(), region_from_detection(detection.box, detection.keypoints)) is None
    )
