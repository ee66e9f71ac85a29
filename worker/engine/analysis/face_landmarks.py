"""The 478-point face mesh on a face's region: landmarks, presence, head pose.

The region (centre, side, roll) comes from a detection or from the previous frame's landmarks, which is how
faces are tracked between sparse detections: the mesh model re-finds the face in a slightly enlarged region.
Only a compact subset of the points is kept per frame (lips, jaw line, eyes, nose): enough for masks and lip
motion at ~0.7 KB per face per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from worker.engine.analysis.models import load_model_files

_INPUT_SIZE = 256
_REGION_SCALE = 1.5  # the mesh model was trained on regions 1.5x the face box
_MIN_PRESENCE = 0.5

# Indices into the 478-point mesh (MediaPipe's canonical face model).
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
EYES_AND_NOSE = (33, 133, 362, 263, 1, 2, 98, 327)
KEPT = LIPS_OUTER + LIPS_INNER + FACE_OVAL + EYES_AND_NOSE
# Positions of named points inside the kept subset.
KEPT_INDEX = {mesh: position for position, mesh in enumerate(KEPT)}
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = KEPT_INDEX[33], KEPT_INDEX[263]
UPPER_LIP_INNER, LOWER_LIP_INNER = KEPT_INDEX[13], KEPT_INDEX[14]
MOUTH_RIGHT, MOUTH_LEFT = KEPT_INDEX[61], KEPT_INDEX[291]
NOSE_TIP, FOREHEAD, CHIN = KEPT_INDEX[1], KEPT_INDEX[10], KEPT_INDEX[152]


@dataclass(frozen=True)
class Region:
    centre: np.ndarray  # (2,) frame pixels
    side: float  # square side in frame pixels
    roll: float  # radians; the face's eye line angle in the frame (y down)


@dataclass(frozen=True)
class FaceLandmarks:
    points: np.ndarray  # (len(KEPT), 2) float32 frame pixels
    presence: float
    yaw: float  # degrees
    pitch: float
    roll: float
    sharpness: float  # variance of the Laplacian on the mouth area of the model's crop

    @property
    def box(self) -> np.ndarray:
        return np.concatenate([self.points.min(axis=0), self.points.max(axis=0)]).astype(np.float32)

    def next_region(self) -> Region:
        """Where to look for this face in the next frame."""
        return region_from_points(self.points)


def region_from_detection(box: np.ndarray, keypoints: np.ndarray) -> Region:
    right_eye, left_eye = keypoints[0], keypoints[1]
    roll = math.atan2(float(left_eye[1] - right_eye[1]), float(left_eye[0] - right_eye[0]))
    centre = (box[:2] + box[2:]) / 2
    side = float(max(box[2] - box[0], box[3] - box[1])) * _REGION_SCALE
    return Region(centre.astype(np.float32), side, roll)


def region_from_points(points: np.ndarray) -> Region:
    right_eye, left_eye = points[RIGHT_EYE_OUTER], points[LEFT_EYE_OUTER]
    roll = math.atan2(float(left_eye[1] - right_eye[1]), float(left_eye[0] - right_eye[0]))
    # Measure the extent in the face's own axes so a tilted head does not inflate the region.
    rotation = np.array([[math.cos(roll), math.sin(roll)], [-math.sin(roll), math.cos(roll)]], np.float32)
    aligned = points @ rotation.T
    low, high = aligned.min(axis=0), aligned.max(axis=0)
    centre = ((low + high) / 2) @ rotation
    side = float(max(high - low)) * _REGION_SCALE
    return Region(centre.astype(np.float32), side, roll)


class LandmarkModel:
    def __init__(self, num_threads: int = 1) -> None:
        self._interpreter = Interpreter(model_content=load_model_files().landmarks, num_threads=num_threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = sorted(self._interpreter.get_output_details(), key=lambda detail: detail["name"])
        # Identity: (1,1,1,1434) mesh; Identity_1: (1,1,1,1) face presence logit.
        self._mesh = outputs[0]["index"]
        self._presence = outputs[1]["index"]

    def run(self, frame: np.ndarray, region: Region) -> FaceLandmarks | None:
        """The face in `region` of an RGB uint8 frame, or None when no face is there."""
        found = self.mesh(frame, region)
        if found is None:
            return None
        mesh, presence, crop, crop_to_frame = found
        kept = mesh[list(KEPT)]
        points = kept[:, :2] @ crop_to_frame[:, :2].T + crop_to_frame[:, 2]
        yaw, pitch, roll = _head_pose(mesh, region.roll)
        return FaceLandmarks(
            points=points.astype(np.float32),
            presence=presence,
            yaw=yaw,
            pitch=pitch,
            roll=roll,
            sharpness=_mouth_sharpness(crop, kept[:, :2]),
        )

    def mesh(
        self, frame: np.ndarray, region: Region
    ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray] | None:
        """All 478 points (x, y, z in crop pixels), presence, the model's crop and its crop-to-frame map."""
        if region.side < 8:
            return None
        scale = region.side / _INPUT_SIZE
        cos, sin = math.cos(region.roll) * scale, math.sin(region.roll) * scale
        half = _INPUT_SIZE / 2
        # Maps crop pixels to frame pixels: crop axes follow the face's eye line.
        crop_to_frame = np.array(
            [
                [cos, -sin, region.centre[0] - cos * half + sin * half],
                [sin, cos, region.centre[1] - sin * half - cos * half],
            ],
            dtype=np.float32,
        )
        crop = cv2.warpAffine(
            frame,
            crop_to_frame,
            (_INPUT_SIZE, _INPUT_SIZE),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
        )
        tensor = _normalise_exposure(crop)
        self._interpreter.set_tensor(self._input, tensor[None])
        self._interpreter.invoke()
        logit = float(self._interpreter.get_tensor(self._presence).reshape(-1)[0])
        presence = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, logit))))
        if presence < _MIN_PRESENCE:
            return None
        mesh = self._interpreter.get_tensor(self._mesh).reshape(-1, 3).copy()  # (478, 3) crop pixels
        return mesh, presence, crop, crop_to_frame


def _normalise_exposure(crop: np.ndarray) -> np.ndarray:
    """Float input in [0, 1]; dark or flat crops are stretched so faces in shadow stay findable."""
    pixels = crop.astype(np.float32) / 255.0
    sample = pixels[::8, ::8]
    low, high = np.percentile(sample, (1, 99))
    if high - low < 0.45 or sample.mean() < 0.3:
        pixels = np.clip((pixels - low) / max(float(high - low), 0.05), 0.0, 1.0).astype(np.float32)
    return pixels


def _head_pose(mesh: np.ndarray, crop_roll: float) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees from the mesh's own 3D points (z is in the same units as x and y)."""
    across = mesh[263] - mesh[33]  # right eye corner to left: the face's x axis
    down = mesh[152] - mesh[10]  # forehead to chin: the face's y axis
    across /= np.linalg.norm(across) + 1e-6
    down -= across * float(down @ across)
    down /= np.linalg.norm(down) + 1e-6
    yaw = math.degrees(math.atan2(float(across[2]), float(across[0])))
    pitch = math.degrees(math.atan2(float(down[2]), float(down[1])))
    roll = math.degrees(math.atan2(float(across[1]), float(across[0])) + crop_roll)
    return yaw, pitch, roll


def _mouth_sharpness(crop: np.ndarray, points: np.ndarray) -> float:
    lips = points[: len(LIPS_OUTER)]
    x0, y0 = np.clip(lips.min(axis=0).astype(int) - 8, 0, _INPUT_SIZE - 1)
    x1, y1 = np.clip(lips.max(axis=0).astype(int) + 8, 1, _INPUT_SIZE)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return 0.0
    gray = cv2.cvtColor(np.ascontiguousarray(crop[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())
