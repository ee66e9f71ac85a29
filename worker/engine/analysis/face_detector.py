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
_MAX_TILE_LEVEL = 3


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

    def levels(self, frame_shape: tuple[int, ...]) -> list[int]:
        """Scan levels this frame size supports: 0 is the whole frame, n >= 1 tiles of 1/n the short side."""
        height, width = frame_shape[:2]
        short = min(height, width)
        found = [0]
        for level in range(1, _MAX_TILE_LEVEL + 1):
            if short // level < 2 * _INPUT_SIZE or (level == 1 and height == width):
                continue
            found.append(level)
        return found

    def detect(self, frame: np.ndarray, levels: list[int] | None = None) -> list[Detection]:
        """Faces in an RGB uint8 frame, scanning the given levels (default: all this frame supports)."""
        height, width = frame.shape[:2]
        short = min(height, width)
        found: list[Detection] = []
        for level in self.levels(frame.shape) if levels is None else levels:
            side = max(height, width) if level == 0 else short // level
            # Scale the frame once per level so each window is a plain crop of model-sized pixels.
            scale = _INPUT_SIZE / side
            scaled = cv2.resize(
                frame,
                (max(1, round(width * scale)), max(1, round(height * scale))),
                interpolation=cv2.INTER_AREA,
            )
            windows = [(0, 0)] if level == 0 else _tiles(scaled.shape[1], scaled.shape[0], _INPUT_SIZE)
            for x, y in windows:
                found.extend(self._detect_window(scaled, x, y, 1.0 / scale, (width, height)))
        return _non_max_suppression(found)

    def _detect_window(
        self, scaled: np.ndarray, x: int, y: int, to_frame: float, frame_size: tuple[int, int]
    ) -> list[Detection]:
        crop = scaled[y : y + _INPUT_SIZE, x : x + _INPUT_SIZE]
        # Pad to the model's square (letterbox) so faces stay undistorted.
        pixels = np.zeros((_INPUT_SIZE, _INPUT_SIZE, 3), dtype=np.uint8)
        pixels[: crop.shape[0], : crop.shape[1]] = crop
        tensor = (pixels.astype(np.float32) / 127.5 - 1.0)[None]
        self._interpreter.set_tensor(self._input, tensor)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._regressors)[0]  # (896, 16)
        logits = self._interpreter.get_tensor(self._scores)[0, :, 0]  # (896,)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))
        width, height = frame_size
        detections = []
        for index in np.flatnonzero(scores >= _MIN_SCORE):
            anchor = self._anchors[index]
            values = raw[index] / _INPUT_SIZE
            centre = anchor + values[0:2]
            size = values[2:4]
            corners = np.concatenate([centre - size / 2, centre + size / 2]) * _INPUT_SIZE + [x, y, x, y]
            box = np.clip(corners * to_frame, 0, [width, height, width, height])
            keypoints = ((anchor + values[4:16].reshape(6, 2)) * _INPUT_SIZE + [x, y]) * to_frame
            if box[2] - box[0] < 4 or box[3] - box[1] < 4:
                continue
            detections.append(
                Detection(box.astype(np.float32), keypoints.astype(np.float32), float(scores[index]))
            )
        return detections


def _tiles(width: int, height: int, side: int) -> list[tuple[int, int]]:
    """Top-left corners of square windows of `side` covering the image with a quarter overlap."""
    stride = max(1, side * 3 // 4)

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        return [*range(0, length - side, stride), length - side]

    return [(x, y) for y in starts(height) for x in starts(width)]


def box_iou(first: np.ndarray, second: np.ndarray) -> float:
    """Intersection over union of two x0, y0, x1, y1 boxes."""
    intersection = _intersection(first, second)
    union = _area(first) + _area(second) - intersection
    return float(intersection / union) if union > 0 else 0.0


def box_inside(inner: np.ndarray, outer: np.ndarray) -> float:
    """The share of `inner`'s area that lies inside `outer`."""
    area = _area(inner)
    return float(_intersection(inner, outer) / area) if area > 0 else 0.0


def _area(box: np.ndarray) -> float:
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


def _intersection(first: np.ndarray, second: np.ndarray) -> float:
    width = min(first[2], second[2]) - max(first[0], second[0])
    height = min(first[3], second[3]) - max(first[1], second[1])
    return float(max(0.0, width) * max(0.0, height))


def _non_max_suppression(detections: list[Detection]) -> list[Detection]:
    kept: list[Detection] = []
    for detection in sorted(detections, key=lambda item: -item.score):
        if all(box_iou(detection.box, other.box) < _NMS_IOU for other in kept):
            kept.append(detection)
    return kept
