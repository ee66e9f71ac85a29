"""Lower-face masks: the region a renderer may change for one face in one frame, drawn on demand.

The region is the convex hull of the mouth, the lips, the nose's base and the jaw line below the nose, pushed
down by a jaw allowance (so the renderer can open the mouth wider than the source did) and grown a little;
its edge is feathered with a Gaussian. Landmarks are averaged over neighbouring frames first, so the mask
does not shimmer. Nothing is stored per pixel: a mask exists only while a segment needs it.
"""

from __future__ import annotations

import cv2
import numpy as np

from worker.engine.analysis.face_landmarks import (
    CHIN,
    FACE_OVAL,
    FOREHEAD,
    KEPT_INDEX,
    LEFT_EYE_OUTER,
    LIPS_OUTER,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    NOSE_TIP,
    RIGHT_EYE_OUTER,
)
from worker.engine.analysis.tracks import FaceTrack

JAW_ALLOWANCE = 0.12  # of the forehead-to-chin height: how far below the chin the jaw may move
FEATHER = 0.035  # Gaussian sigma, of the face height
SMOOTHING_FRAMES = 2  # landmarks are averaged over +-this many frames

_OVAL = np.asarray([KEPT_INDEX[index] for index in FACE_OVAL])
_LIPS = np.asarray([KEPT_INDEX[index] for index in LIPS_OUTER])
_NOSE_BASE = np.asarray([KEPT_INDEX[index] for index in (98, 2, 327)])


def smoothed_points(track: FaceTrack, frame_index: int) -> np.ndarray:
    """The track's landmarks at a frame, averaged with present neighbours in time."""
    offset = frame_index - track.first_frame
    first = max(0, offset - SMOOTHING_FRAMES)
    last = min(len(track.present), offset + SMOOTHING_FRAMES + 1)
    present = track.present[first:last]
    return track.points[first:last][present].mean(axis=0)


def lower_face_polygon(points: np.ndarray) -> tuple[np.ndarray, float]:
    """(vertices (n, 2) float32, feather sigma in pixels) for one face's kept landmarks."""
    across = points[LEFT_EYE_OUTER] - points[RIGHT_EYE_OUTER]
    across = across / max(float(np.linalg.norm(across)), 1e-6)
    down = np.array([-across[1], across[0]], dtype=np.float32)
    face_height = max(float((points[CHIN] - points[FOREHEAD]) @ down), 1.0)
    depth = points @ down
    oval = points[_OVAL]
    oval_depth = depth[_OVAL]
    below_nose = oval[oval_depth >= depth[NOSE_TIP] - 0.02 * face_height]
    mouth_depth = min(depth[MOUTH_LEFT], depth[MOUTH_RIGHT])
    jaw = oval[oval_depth >= mouth_depth] + down * (JAW_ALLOWANCE * face_height)
    outline = np.concatenate([below_nose, jaw, points[_LIPS], points[_NOSE_BASE]]).astype(np.float32)
    hull = cv2.convexHull(outline).reshape(-1, 2)
    sigma = max(1.0, FEATHER * face_height)
    # Grow by 1.5 sigma so the feathered edge stays ~1 at the hull's own boundary.
    centre = hull.mean(axis=0)
    outward = hull - centre
    lengths = np.maximum(np.linalg.norm(outward, axis=1, keepdims=True), 1e-6)
    grown = hull + outward / lengths * (1.5 * sigma)
    return grown.astype(np.float32), sigma


def draw_mask(target: np.ndarray, polygon: np.ndarray, sigma: float, weight: float = 1.0) -> None:
    """Max a feathered polygon (scaled by `weight`) into a (height, width) float32 mask, only around it."""
    height, width = target.shape
    margin = int(np.ceil(3 * sigma)) + 1
    x0 = max(0, int(np.floor(polygon[:, 0].min())) - margin)
    y0 = max(0, int(np.floor(polygon[:, 1].min())) - margin)
    x1 = min(width, int(np.ceil(polygon[:, 0].max())) + margin + 1)
    y1 = min(height, int(np.ceil(polygon[:, 1].max())) + margin + 1)
    if x1 <= x0 or y1 <= y0:
        return
    patch = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
    # Sub-pixel vertices (4 fractional bits) keep slowly moving masks from stepping a pixel at a time.
    vertices = np.round((polygon - [x0, y0]) * 16).astype(np.int32)
    cv2.fillPoly(patch, [vertices], 1.0, lineType=cv2.LINE_AA, shift=4)
    blurred = cv2.GaussianBlur(patch, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)
    patch = np.clip(np.asarray(blurred, dtype=np.float32), 0.0, 1.0) * np.float32(weight)
    # Cut the Gaussian's far tail: weights under one 8-bit level would only dither pixels far from the mouth.
    patch[patch < 1.0 / 255.0] = 0.0
    np.maximum(target[y0:y1, x0:x1], patch, out=target[y0:y1, x0:x1])
