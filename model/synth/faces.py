"""The real face photographs the corpus is built from, and each one's 478-point face mesh.

Photos ship inside installed packages under open licences (nothing is downloaded):

- ``astronaut``: scikit-image's ``data.astronaut()``, Eileen Collins, NASA, public domain.
- ``hopper``: matplotlib's ``sample_data/grace_hopper.jpg``, Grace Hopper, U.S. Navy, public domain.

The mesh comes from the project's own face model (BlazeFace + MediaPipe face mesh), run once per photo and
cached; clips then move the mesh analytically, never re-detecting per frame.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

PHOTO_IDS = ("astronaut", "hopper")


@dataclass(frozen=True)
class FacePhoto:
    photo_id: str
    image: np.ndarray  # (h, w, 3) uint8 RGB
    mesh: np.ndarray  # (478, 2) float32 photo pixels, the face as photographed (mouth closed)
    depth: np.ndarray  # (478,) float32 the mesh's z in photo pixels (smaller = nearer the camera)

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.mesh[263] - self.mesh[33]))


def _load_image(photo_id: str) -> np.ndarray:
    if photo_id == "astronaut":
        from skimage import data

        return np.ascontiguousarray(data.astronaut()[:, :, :3])
    if photo_id == "hopper":
        from matplotlib import cbook
        from PIL import Image

        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        with Image.open(path) as picture:
            return np.ascontiguousarray(np.asarray(picture.convert("RGB")))
    raise ValueError(f"unknown photo {photo_id!r}; known: {', '.join(PHOTO_IDS)}")


@functools.cache
def load_photo(photo_id: str, mirrored: bool = False) -> FacePhoto:
    """The photo (or its mirror image) and its mesh, detected once per process.

    A mirror image is detected anew rather than flipping the mesh: the mesh's indices name the person's own
    left and right, which a flip would swap.
    """
    from worker.engine.analysis.face_detector import FaceDetector
    from worker.engine.analysis.face_landmarks import (
        KEPT,
        LandmarkModel,
        region_from_detection,
        region_from_points,
    )

    image = _load_image(photo_id)
    if mirrored:
        image = np.ascontiguousarray(image[:, ::-1])
    detections = FaceDetector().detect(image)
    if not detections:
        raise RuntimeError(f"the face model found no face in photo {photo_id!r}")
    best = max(detections, key=lambda found: found.score)
    model = LandmarkModel()
    region = region_from_detection(best.box, best.keypoints)
    mesh = depth = None
    # Re-run on the region the mesh itself gives: the detector's box is coarser than the mesh's.
    for _ in range(3):
        found = model.mesh(image, region)
        if found is None:
            raise RuntimeError(f"the face mesh model lost the face in photo {photo_id!r}")
        raw, _presence, _crop, crop_to_frame = found
        mesh = raw[:, :2] @ crop_to_frame[:, :2].T + crop_to_frame[:, 2]
        depth = raw[:, 2] * float(np.linalg.norm(crop_to_frame[:, 0]))
        region = region_from_points(mesh[list(KEPT)])
    assert mesh is not None and depth is not None
    return FacePhoto(photo_id, image, mesh.astype(np.float32), depth.astype(np.float32))
