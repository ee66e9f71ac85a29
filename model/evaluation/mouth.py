"""The speaker's mouth opening as the project's own face model sees it in a video.

Rendered output and ground truth are measured by the same code (scene analysis with a landmark measurement on
every frame), so any bias of the landmark model is the same on both sides of the correlation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from worker.engine.analysis.analysis import analyze
from worker.engine.analysis.options import AnalysisOptions
from worker.engine.analysis.tracks import FaceTrack

# Every frame measured (no interpolation between measurements, which would smooth the signal being scored).
MEASURE_OPTIONS = AnalysisOptions(landmark_rate_hz=0)
# A track stands for the speaker in a frame when its box overlaps the speaker's true face box this much.
MIN_SPEAKER_IOU = 0.3


def measure_opening(video: Path, speaker_landmarks: np.ndarray) -> np.ndarray:
    """(frames,) inner-lip gap over eye-corner distance of the speaker in each frame of `video`.

    NaN where no face track matches the speaker; `speaker_landmarks` (frames, points, 2) say where they are.
    """
    analysis = analyze(video, None, MEASURE_OPTIONS)
    return speaker_opening(analysis.tracks, analysis.frame_count, speaker_landmarks)


def speaker_opening(tracks: list[FaceTrack], frame_count: int, speaker_landmarks: np.ndarray) -> np.ndarray:
    """Per frame, the mouth opening of the track whose box best matches the speaker's landmarks.

    Chosen frame by frame, so a speaker whose track is lost and found again under a new id is still followed,
    and a listener beside them is never taken for them.
    """
    truth_boxes = landmark_boxes(speaker_landmarks[:frame_count])
    opening = np.full(frame_count, np.nan)
    best = np.full(frame_count, MIN_SPEAKER_IOU)
    for track in tracks:
        first = track.first_frame
        last = min(track.last_frame + 1, len(truth_boxes))
        if last <= first:
            continue
        span = slice(0, last - first)
        overlap = box_iou(track.boxes()[span], truth_boxes[first:last])
        overlap[~track.present[span]] = 0.0
        better = overlap > best[first:last]
        best[first:last][better] = overlap[better]
        opening[first:last][better] = track.mouth_openness()[span][better]
    return opening


def landmark_boxes(points: np.ndarray) -> np.ndarray:
    """(frames, 4) x0, y0, x1, y1 around each frame's points (NaN rows where the points are missing)."""
    points = np.asarray(points, dtype=np.float64)
    finite = np.isfinite(points).all(axis=(1, 2))
    boxes = np.full((len(points), 4), np.nan)
    if finite.any():
        boxes[finite] = np.concatenate([points[finite].min(axis=1), points[finite].max(axis=1)], axis=1)
    return boxes


def box_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Row-wise intersection over union of (n, 4) boxes; 0 where either box is missing."""
    x0 = np.maximum(first[:, 0], second[:, 0])
    y0 = np.maximum(first[:, 1], second[:, 1])
    x1 = np.minimum(first[:, 2], second[:, 2])
    y1 = np.minimum(first[:, 3], second[:, 3])
    intersection = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)

    def area(boxes: np.ndarray) -> np.ndarray:
        return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)

    union = area(first) + area(second) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, intersection / union, 0.0)
    return np.nan_to_num(iou, nan=0.0)
