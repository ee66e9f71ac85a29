"""BlazeFace short-range face detection on whole frames and on tiles (for small, distant faces).

The model sees 128x128 pixels, so a face must fill roughly a sixth of its input to be found. Running it on the
letterboxed frame finds close-ups; running it on overlapping square tiles finds faces down to ~1/40 of the
frame's short side. Boxes and keypoints come back in frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from worker.engine.analysis.models import load_model_files

_INPUT_SIZE = 128
_MIN_SCORE = 0.5
_NMS_IOU = 0.3


@dataclass(frozen=True)
class Detection:
    box: np.ndarray  # (4,) x0, y0, x1, y1 in frame pixels
    keypoints: (
        np.ndarray
    )  # (6, 2): right eye, left eye, nose tip, mouth, right ear, left ear (subject's sides)
    score: float


def _anchors() -> np.ndarray:
    """SSD anchor centres of the short-range model: 16x16 cells x 2 and 8x8 cells x 6, unit size."""
    centres = []
    for grid, per_cell in ((16, 2), (8, 6)):
        for row in range(grid):
            for column in range(grid):
                for _ in range(per_cell):
                    centres.append(((column + 0.5) / grid, (row + 0.5) / grid))
    return np.asarray(centres, dtype=np.float32)  # (896, 2)


class FaceDetector:
    def __init__(self, num_threads: int = 1) -> None:
        self._interpreter = Interpreter(model_content=load_model_files().detector, num_threads=num_threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = {detail["name"]: detail["index"] for detail in self._interpreter.get_output_details()}
        self._regressors = outputs["regressors"]
        self._scores = outputs["classificators"]
        self._anchors = _anchors()

    def detect(self, frame: np.ndarray, tile_levels: int = 3) -> list[Detection]:
        """Faces in an RGB uint8 frame.

        `tile_levels` adds passes on square tiles of 1/1, 1/2, 1/3 of the short side (while >= 256 px).
        """
        height, width = frame.shape[:2]
        short = min(height, width)
        windows = [(0, 0, max(height, width))]  # letterboxed whole frame
        for level in range(1, tile_levels + 1):
            side = short // level if level > 1 else short
            if side < 2 * _INPUT_SIZE or (level == 1 and height == width):
                continue
            windows.extend(_tiles(width, height, side))
        found: list[Detection] = []
        for x, y, side in windows:
            found.extend(self._detect_window(frame, x, y, side))
        return _non_max_suppression(found)

    def _detect_window(self, frame: np.ndarray, x: int, y: int, side: int) -> list[Detection]:
        height, width = frame.shape[:2]
        crop = frame[y : y + side, x : x + side]
        # Pad to a square (letterbox) so the model sees undistorted faces.
        square = np.zeros((side, side, 3), dtype=np.uint8)
        square[: crop.shape[0], : crop.shape[1]] = crop
        pixels = cv2.resize(square, (_INPUT_SIZE, _INPUT_SIZE), interpolation=cv2.INTER_AREA)
        tensor = (pixels.astype(np.float32) / 127.5 - 1.0)[None]
        self._interpreter.set_tensor(self._input, tensor)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._regressors)[0]  # (896, 16)
        logits = self._interpreter.get_tensor(self._scores)[0, :, 0]  # (896,)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))
        keep = np.flatnonzero(scores >= _MIN_SCORE)
        detections = []
        for index in keep:
            anchor = self._anchors[index]
            values = raw[index] / _INPUT_SIZE
            centre = anchor + values[0:2]
            size = values[2:4]
            box = np.concatenate([centre - size / 2, centre + size / 2]) * side + [x, y, x, y]
            keypoints = (anchor + values[4:16].reshape(6, 2)) * side + [x, y]
            box = np.clip(box, 0, [width, height, width, height])
            if box[2] - box[0] < 4 or box[3] - box[1] < 4:
                continue
            detections.append(
                Detection(box.astype(np.float32), keypoints.astype(np.float32), float(scores[index]))
            )
        return detections


def _tiles(width: int, height: int, side: int) -> list[tuple[int, int, int]]:
    """Square windows of `side` covering the frame with a quarter overlap."""
    stride = max(1, side * 3 // 4)

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        positions = list(range(0, length - side, stride))
        return [*positions, length - side]

    return [(x, y, side) for y in starts(height) for x in starts(width)]


def box_iou(first: np.ndarray, second: np.ndarray) -> float:
    x0, y0 = max(first[0], second[0]), max(first[1], second[1])
    x1, y1 = min(first[2], second[2]), min(first[3], second[3])
    intersection = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
    return float(intersection / union) if union > 0 else 0.0


def _non_max_suppression(detections: list[Detection]) -> list[Detection]:
    kept: list[Detection] = []
    for detection in sorted(detections, key=lambda item: -item.score):
        if all(box_iou(detection.box, other.box) < _NMS_IOU for other in kept):
            kept.append(detection)
    return kept
