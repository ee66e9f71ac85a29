"""Face tracks within shots: sparse detection, mesh tracking in between, stable ids.

Every `detect_interval` frames (and at each shot start, and whenever a track was lost) the detector scans the
frame; each face not already tracked starts a track. In every frame each live track is followed by running the
mesh model on the region its previous landmarks give. A track that loses its face (a hand over the mouth, a
turn too far) keeps looking in its last region for `max_gap` frames and, if a face reappears there, or the
detector finds one that overlaps its last box, it continues with the same id. Tracks never cross a shot cut.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from worker.engine.analysis.face_detector import FaceDetector, box_inside, box_iou
from worker.engine.analysis.face_landmarks import FaceLandmarks, LandmarkModel, Region, region_from_detection

logger = logging.getLogger(__name__)

_SAME_FACE_IOU = 0.3
_DUPLICATE_IOU = 0.5
# A detection lying mostly inside a face already found is part of that face (eyes and nose in glasses,
# seen as a smaller face), never another person: a face in front hides whatever is behind it.
_INSIDE_A_FACE = 0.5


@dataclass
class TrackRecorder:
    """Per-frame facts of one track, appended while streaming (compact: no pixels)."""

    id: int
    shot: int
    frames: list[int] = field(default_factory=list)
    points: list[np.ndarray] = field(default_factory=list)
    pose: list[tuple[float, float, float]] = field(default_factory=list)
    presence: list[float] = field(default_factory=list)
    sharpness: list[float] = field(default_factory=list)
    region: Region | None = None
    last_box: np.ndarray | None = None
    misses: int = 0
    skipped_to: int = -1  # the last frame the stride skipped
    detection_score: float = 0.0  # the detector's best confidence in this face (when it started or came back)

    def prepend(self, frame_index: int, landmarks: FaceLandmarks) -> None:
        """Add an earlier frame (found by following the face backwards in time)."""
        self.frames.insert(0, frame_index)
        self.points.insert(0, landmarks.points)
        self.pose.insert(0, (landmarks.yaw, landmarks.pitch, landmarks.roll))
        self.presence.insert(0, landmarks.presence)
        self.sharpness.insert(0, landmarks.sharpness)

    def hold(self, frame_index: int) -> None:
        """Repeat the last measurement at a later frame (the track's end fell on a skipped frame)."""
        self.frames.append(frame_index)
        self.points.append(self.points[-1])
        self.pose.append(self.pose[-1])
        self.presence.append(self.presence[-1])
        self.sharpness.append(self.sharpness[-1])

    def add(self, frame_index: int, landmarks: FaceLandmarks) -> None:
        self.frames.append(frame_index)
        self.points.append(landmarks.points)
        self.pose.append((landmarks.yaw, landmarks.pitch, landmarks.roll))
        self.presence.append(landmarks.presence)
        self.sharpness.append(landmarks.sharpness)
        self.region = landmarks.next_region()
        self.last_box = landmarks.box
        self.misses = 0


def _same_face(box: np.ndarray, face: np.ndarray) -> bool:
    return box_iou(box, face) > _SAME_FACE_IOU or box_inside(box, face) > _INSIDE_A_FACE


class FaceTracker:
    def __init__(
        self, detect_interval: int = 10, max_gap: int = 12, num_threads: int = 1, landmark_stride: int = 1
    ) -> None:
        self._detector = FaceDetector(num_threads)
        self._landmarks = LandmarkModel(num_threads)
        self._detect_interval = max(1, detect_interval)
        self._max_gap = max(0, max_gap)
        # A face that was found is measured every `landmark_stride` frames and interpolated in between.
        self._stride = max(1, landmark_stride)
        self._live: list[TrackRecorder] = []
        self._finished: list[TrackRecorder] = []
        self._shot = -1
        self._last_detection = -(10**9)
        self._next_id = 0
        self.detections_run = 0
        self._tile_turn = 0
        # The last frames of this shot (analysis size), so a face found late is followed back to where it
        # appeared; bounded, so memory does not grow with the video.
        self._recent: deque[tuple[int, np.ndarray]] = deque(maxlen=self._detect_interval)

    def step(self, frame_index: int, frame: np.ndarray, new_shot: bool) -> None:
        """Feed the next RGB frame (upright, analysis size); `new_shot` starts a new shot at this frame."""
        if new_shot or self._shot < 0:
            self._close_shot()
            self._recent.clear()
            self._shot += 1
        lost_now = False
        for track in list(self._live):
            assert track.region is not None
            if track.misses == 0 and frame_index - track.frames[-1] < self._stride:
                track.skipped_to = frame_index
                continue
            landmarks = self._landmarks.run(frame, track.region)
            if landmarks is None:
                track.misses += 1
                lost_now = True
                if track.misses > self._max_gap:
                    self._live.remove(track)
                    self._finished.append(track)
            else:
                track.add(frame_index, landmarks)
        self._drop_duplicates(frame_index)
        due = frame_index - self._last_detection >= self._detect_interval
        if new_shot or frame_index == 0:
            self._detect(frame_index, frame, self._detector.levels(frame.shape))
        elif due or (lost_now and frame_index - self._last_detection >= 2):
            # The whole frame every time; one tile level per scan in turn, which keeps scans cheap while
            # small faces are still looked for every few scans.
            tile_levels = self._detector.levels(frame.shape)[1:]
            levels = [0]
            if tile_levels:
                levels.append(tile_levels[self._tile_turn % len(tile_levels)])
                self._tile_turn += 1
            self._detect(frame_index, frame, levels)
        self._recent.append((frame_index, frame))

    def finish(self) -> list[TrackRecorder]:
        """All tracks with at least one frame, ordered by first frame."""
        self._close_shot()
        tracks = [track for track in self._finished + self._live if track.frames]
        self._live, self._finished = [], []
        return sorted(tracks, key=lambda track: (track.frames[0], track.id))

    def _close_shot(self) -> None:
        """End the live tracks; one whose last frames were skipped by the stride holds its last landmarks."""
        for track in self._live:
            if track.misses == 0 and track.frames and track.skipped_to > track.frames[-1]:
                track.hold(track.skipped_to)
        self._finished.extend(self._live)
        self._live = []

    def _detect(self, frame_index: int, frame: np.ndarray, levels: list[int]) -> None:
        self._last_detection = frame_index
        self.detections_run += 1
        tracked = [track.last_box for track in self._live if track.misses == 0 and track.last_box is not None]
        for detection in self._detector.detect(frame, levels):
            if any(_same_face(detection.box, box) for box in tracked):
                continue
            landmarks = self._landmarks.run(frame, region_from_detection(detection.box, detection.keypoints))
            if landmarks is None or any(_same_face(landmarks.box, box) for box in tracked):
                continue
            track = self._revivable(landmarks.box)
            if track is None:
                track = TrackRecorder(id=self._next_id, shot=self._shot)
                self._next_id += 1
                self._live.append(track)
                track.add(frame_index, landmarks)
                self._follow_back(track, landmarks)
            else:
                track.add(frame_index, landmarks)
            track.detection_score = max(track.detection_score, detection.score)
            tracked.append(landmarks.box)

    def _follow_back(self, track: TrackRecorder, landmarks: FaceLandmarks) -> None:
        """Extend a new track backwards through the buffered frames of this shot, while the face is there."""
        region = landmarks.next_region()
        for frame_index, frame in reversed(self._recent):
            if (track.frames[0] - frame_index) % self._stride:
                continue
            earlier = self._landmarks.run(frame, region)
            if earlier is None:
                break
            track.prepend(frame_index, earlier)
            region = earlier.next_region()

    def _revivable(self, box: np.ndarray) -> TrackRecorder | None:
        """A track of this shot that lost its face near `box` (still searching or given up)."""
        candidates = [track for track in self._live if track.misses > 0] + [
            track for track in self._finished if track.shot == self._shot
        ]
        best = max(
            candidates,
            key=lambda track: box_iou(box, track.last_box) if track.last_box is not None else 0.0,
            default=None,
        )
        if best is None or best.last_box is None or box_iou(box, best.last_box) <= _SAME_FACE_IOU:
            return None
        if best in self._finished:
            self._finished.remove(best)
            self._live.append(best)
        return best

    def _drop_duplicates(self, frame_index: int) -> None:
        """Two tracks that converged on one face in this frame: keep the older id."""
        measured = [item for item in self._live if item.frames and item.frames[-1] == frame_index]
        for track in sorted(measured, key=lambda item: item.id):
            if track.last_box is None or track not in self._live:
                continue
            for other in [item for item in measured if item.id > track.id and item in self._live]:
                if other.last_box is not None and box_iou(track.last_box, other.last_box) > _DUPLICATE_IOU:
                    other.frames.pop()
                    other.points.pop()
                    other.pose.pop()
                    other.presence.pop()
                    other.sharpness.pop()
                    self._live.remove(other)
                    self._finished.append(other)
