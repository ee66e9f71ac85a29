"""A finished face track: dense per-frame arrays over its span, gaps filled by interpolation."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from worker.engine.analysis.face_landmarks import (
    LEFT_EYE_OUTER,
    LOWER_LIP_INNER,
    RIGHT_EYE_OUTER,
    UPPER_LIP_INNER,
)
from worker.engine.analysis.tracking import TrackRecorder

_MIN_FACE_PIXELS = 24.0  # faces smaller than this are too small for the renderer to change
# A track is a face only if, once at least, the detector was sure of it or the mesh measured it as a clear,
# large enough face. Patterns pass the detector's 0.5 cut and the mesh readily fits a face to them (a glass on
# a table, the moon, a blurred patch beside a neck: detector 0.53-0.68, peak quality 0.44-0.55), while every
# real face in the test footage (dark, blurred, turned 80 degrees, a hand over the mouth, 5 % of a 720p frame)
# reached a detector confidence of 0.77 or more, and a confidently meshed face quality 0.9 or more.
MIN_FACE_DETECTION_SCORE = 0.75
MIN_TRACK_PEAK_QUALITY = 0.6


@dataclass
class FaceTrack:
    id: int
    shot: int
    first_frame: int
    detected: np.ndarray  # (span,) bool: the model found the face in this frame
    present: np.ndarray  # (span,) bool: detected, or inside a short gap that was interpolated
    points: np.ndarray  # (span, points, 2) float32, display pixels
    pose: np.ndarray  # (span, 3) float32 yaw, pitch, roll in degrees
    quality: np.ndarray  # (span,) float32 in [0, 1]
    speaking: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # (span,) set later

    @property
    def last_frame(self) -> int:
        return self.first_frame + len(self.detected) - 1

    @property
    def frames_detected(self) -> int:
        return int(self.detected.sum())

    def covers(self, frame_index: int) -> bool:
        return self.first_frame <= frame_index <= self.last_frame and bool(
            self.present[frame_index - self.first_frame]
        )

    def boxes(self) -> np.ndarray:
        """(span, 4) x0, y0, x1, y1."""
        return np.concatenate([self.points.min(axis=1), self.points.max(axis=1)], axis=1)

    def face_scale(self) -> np.ndarray:
        """(span,) distance between the outer eye corners: the unit for mouth measures."""
        return np.linalg.norm(self.points[:, LEFT_EYE_OUTER] - self.points[:, RIGHT_EYE_OUTER], axis=1)

    def mouth_openness(self) -> np.ndarray:
        """(span,) inner-lip gap over face scale: ~0 closed, ~0.3 wide open."""
        gap = np.linalg.norm(self.points[:, LOWER_LIP_INNER] - self.points[:, UPPER_LIP_INNER], axis=1)
        return gap / np.maximum(self.face_scale(), 1.0)

    def speaking_ranges(self) -> list[list[int]]:
        return frame_ranges(self.speaking, self.first_frame)

    def summary(self) -> dict[str, Any]:
        boxes = self.boxes()
        heights = boxes[:, 3] - boxes[:, 1]
        return {
            "id": self.id,
            "shot": self.shot,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "frames_detected": self.frames_detected,
            "speaking": self.speaking_ranges(),
            "median_face_height": round(float(np.median(heights)), 1),
            "median_quality": round(float(np.median(self.quality)), 3),
        }

    def frames_dict(self) -> list[dict[str, Any]]:
        boxes = self.boxes()
        return [
            {
                "frame": self.first_frame + offset,
                "detected": bool(self.detected[offset]),
                "present": bool(self.present[offset]),
                "box": [round(float(value), 1) for value in boxes[offset]],
                "landmarks": np.round(self.points[offset], 1).tolist(),
                "pose": [round(float(value), 1) for value in self.pose[offset]],
                "quality": round(float(self.quality[offset]), 3),
                "speaking": bool(self.speaking[offset]) if len(self.speaking) else False,
            }
            for offset in range(len(self.detected))
        ]


def frame_ranges(flags: np.ndarray, offset: int = 0) -> list[list[int]]:
    """[[first, last], ...] of the runs of True in `flags`, numbered from `offset`."""
    padded = np.concatenate([[False], flags.astype(bool), [False]])
    changes = np.flatnonzero(padded[1:] != padded[:-1])
    return [
        [int(start) + offset, int(end) - 1 + offset]
        for start, end in zip(changes[::2], changes[1::2], strict=True)
    ]


def real_faces(tracks: list[FaceTrack], recorders: list[TrackRecorder]) -> list[FaceTrack]:
    """The tracks that ever looked like a real face, renumbered 0, 1, ... in their order (ids stay stable
    between a preflight and its dub: both analyse the same video the same way)."""
    kept = [
        track
        for track, recorder in zip(tracks, recorders, strict=True)
        if recorder.detection_score >= MIN_FACE_DETECTION_SCORE
        or float(track.quality.max(initial=0.0)) >= MIN_TRACK_PEAK_QUALITY
    ]
    for number, track in enumerate(sorted(kept, key=lambda track: track.id)):
        track.id = number
    return kept


def finish_track(recorder: TrackRecorder, scale: float, max_gap: int, stride: int = 1) -> FaceTrack:
    """Dense arrays over the track's span; `scale` maps analysis pixels to display pixels.

    Frames between measurements `stride` apart were skipped on purpose and count as detected. Longer gaps of
    at most `max_gap` frames (a blink of occlusion) are interpolated and count as present; longer ones (the
    person left and came back) are absent.
    """
    frames = np.asarray(recorder.frames)
    offsets = frames - frames[0]
    span = int(offsets[-1]) + 1
    points = np.stack(recorder.points).astype(np.float32) * scale
    pose = np.asarray(recorder.pose, dtype=np.float32)
    heights = points[:, :, 1].max(axis=1) - points[:, :, 1].min(axis=1)
    size_score = np.clip(heights / (4 * _MIN_FACE_PIXELS), 0.0, 1.0)
    sharp_score = np.clip(np.asarray(recorder.sharpness, dtype=np.float32) / 60.0, 0.0, 1.0)
    quality = np.asarray(recorder.presence, dtype=np.float32) * size_score * (0.5 + 0.5 * sharp_score)
    detected = np.zeros(span, dtype=bool)
    detected[offsets] = True
    for before, after in itertools.pairwise(offsets):
        if 1 < after - before <= stride:
            detected[before + 1 : after] = True
    present = detected.copy()
    for before, after in itertools.pairwise(offsets):
        if 1 < after - before <= max_gap + 1:
            present[before + 1 : after] = True
    every = np.arange(span)
    dense_points = np.empty((span, *points.shape[1:]), dtype=np.float32)
    for axis in range(points.shape[2]):
        for point in range(points.shape[1]):
            dense_points[:, point, axis] = np.interp(every, offsets, points[:, point, axis])
    dense_pose = np.stack([np.interp(every, offsets, pose[:, axis]) for axis in range(3)], axis=1)
    dense_quality = np.interp(every, offsets, quality) * np.where(detected, 1.0, 0.5)
    return FaceTrack(
        id=recorder.id,
        shot=recorder.shot,
        first_frame=int(frames[0]),
        detected=detected,
        present=present,
        points=dense_points,
        pose=dense_pose.astype(np.float32),
        quality=dense_quality.astype(np.float32),
        speaking=np.zeros(span, dtype=bool),
    )
