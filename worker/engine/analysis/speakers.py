"""The speaker map: which face tracks receive the new audio.

By default every track that SPEAKS somewhere in the source is dubbed; people who stay silent while another
speaks are never touched. When no face speaks anywhere (a still image, a photo with a voice-over, a muted
recording of a still face) the most prominent face of each shot is dubbed instead, and the report says so.
A request may pin the people instead, by track id, by a point on the face in some frame, or by boxes.
"""

from __future__ import annotations

import numpy as np

from worker.engine.analysis.face_detector import box_iou
from worker.engine.analysis.options import SpeakerPin
from worker.engine.analysis.tracks import FaceTrack
from worker.engine.errors import SPEAKER_NOT_FOUND, EngineError

_POINT_MARGIN = 0.15  # a point just outside the landmarks' box (hair, ear) still names the face
_BOX_IOU = 0.3


SPEAKING = "speaking"
PINNED = "pinned"
MOST_PROMINENT = "most_prominent_face"
NOBODY = "none"


def choose_speakers(
    tracks: list[FaceTrack], pins: tuple[SpeakerPin, ...] | None, fallback: bool = True
) -> tuple[list[int], str]:
    """Ids of the tracks to dub, ascending, and how they were chosen."""
    if pins is not None:
        return sorted({_resolve(pin, tracks) for pin in pins}), PINNED
    speaking = sorted(track.id for track in tracks if track.speaking.any())
    if speaking:
        return speaking, SPEAKING
    if not fallback or not tracks:
        return [], NOBODY
    return _most_prominent_per_shot(tracks), MOST_PROMINENT


def _most_prominent_per_shot(tracks: list[FaceTrack]) -> list[int]:
    """Per shot, the face that is largest and on screen longest (median height x frames present)."""
    best: dict[int, tuple[float, int]] = {}
    for track in tracks:
        boxes = track.boxes()[track.present]
        weight = float(np.median(boxes[:, 3] - boxes[:, 1])) * int(track.present.sum())
        if track.shot not in best or weight > best[track.shot][0]:
            best[track.shot] = (weight, track.id)
    return sorted(track_id for _, track_id in best.values())


def _resolve(pin: SpeakerPin, tracks: list[FaceTrack]) -> int:
    if pin.track_id is not None:
        if any(track.id == pin.track_id for track in tracks):
            return pin.track_id
        raise EngineError(SPEAKER_NOT_FOUND, f"there is no face track {pin.track_id}")
    if pin.point is not None:
        frame, x, y = pin.point
        best: tuple[float, int] | None = None
        for track in tracks:
            if not track.covers(frame):
                continue
            x0, y0, x1, y1 = track.boxes()[frame - track.first_frame]
            margin_x, margin_y = (x1 - x0) * _POINT_MARGIN, (y1 - y0) * _POINT_MARGIN
            if x0 - margin_x <= x <= x1 + margin_x and y0 - margin_y <= y <= y1 + margin_y:
                distance = float(np.hypot(x - (x0 + x1) / 2, y - (y0 + y1) / 2))
                if best is None or distance < best[0]:
                    best = (distance, track.id)
        if best is None:
            raise EngineError(SPEAKER_NOT_FOUND, f"no face at ({x:.0f}, {y:.0f}) in frame {frame}")
        return best[1]
    votes: dict[int, int] = {}
    for box in pin.boxes:
        wanted = np.array([box.x, box.y, box.x + box.width, box.y + box.height], dtype=np.float32)
        for track in tracks:
            if (
                track.covers(box.frame)
                and box_iou(wanted, track.boxes()[box.frame - track.first_frame]) > _BOX_IOU
            ):
                votes[track.id] = votes.get(track.id, 0) + 1
    if not votes:
        raise EngineError(SPEAKER_NOT_FOUND, "no face track overlaps the given speaker boxes")
    return max(votes, key=lambda track_id: (votes[track_id], -track_id))
