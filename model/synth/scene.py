"""What source and target share: the person (photo variant, colour grade), where and how the head moves, the
background, blinks. Drawing one frame of the scene gives the face before its mouth is rendered.

The head is a photo placed in the frame by a per-frame similarity (scale, rotation, translation drifting
smoothly) and, for turned heads, a horizontal foreshortening (see `HeadPose`). A soft matte (head ellipse +
shoulders, from the mesh) cuts the person out of the photo onto a new background.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

from model.synth.faces import FacePhoto, load_photo
from model.synth.mouth import MouthRig, build_rig


@dataclass(frozen=True)
class Person:
    photo_id: str
    mirrored: bool
    photo: FacePhoto
    rig: MouthRig
    matte: np.ndarray  # (h, w) float32 the person in the photo

    @property
    def face_height(self) -> float:
        return float(np.linalg.norm(self.photo.mesh[152] - self.photo.mesh[10]))


@functools.cache
def person(photo_id: str, mirrored: bool) -> Person:
    """A photo (or its mirror image, detected anew so the mesh keeps its left/right meaning) and its rig."""
    photo = load_photo(photo_id, mirrored)
    return Person(photo_id, mirrored, photo, build_rig(photo.mesh), _matte(photo))


def _matte(photo: FacePhoto) -> np.ndarray:
    """Head ellipse + neck and shoulders below the chin, feathered."""
    mesh = photo.mesh
    height, width = photo.image.shape[:2]
    face_height = float(np.linalg.norm(mesh[152] - mesh[10]))
    across = (mesh[263] - mesh[33]) / max(float(np.linalg.norm(mesh[263] - mesh[33])), 1e-6)
    angle = float(np.degrees(np.arctan2(across[1], across[0])))
    centre = mesh.mean(axis=0) - np.array([-across[1], across[0]]) * 0.18 * face_height
    matte = np.zeros((height, width), np.float32)
    axes = (round(0.78 * face_height), round(0.95 * face_height))
    cv2.ellipse(matte, (round(float(centre[0])), round(float(centre[1]))), axes, angle, 0, 360, 1.0, -1)
    chin = mesh[152]
    neck_top = chin[1] - 0.25 * face_height
    shoulders = np.array(
        [
            [chin[0] - 0.42 * face_height, neck_top],
            [chin[0] + 0.42 * face_height, neck_top],
            [chin[0] + 0.5 * face_height, chin[1] + 0.45 * face_height],
            [chin[0] + 1.9 * face_height, chin[1] + 1.1 * face_height],
            [chin[0] + 2.2 * face_height, height + face_height],
            [chin[0] - 2.2 * face_height, height + face_height],
            [chin[0] - 1.9 * face_height, chin[1] + 1.1 * face_height],
            [chin[0] - 0.5 * face_height, chin[1] + 0.45 * face_height],
        ],
        np.float32,
    )
    cv2.fillPoly(matte, [np.round(shoulders).astype(np.int32)], 1.0)
    return cv2.GaussianBlur(matte, (0, 0), 0.03 * face_height)


@dataclass
class HeadPose:
    """Per-frame placement of the photo: frame = centre + scale * R(roll) * squeeze(yaw) * (p - anchor).

    `yaw` (radians) foreshortens the head horizontally around its vertical axis, using each mesh point's depth
    for the mesh and a smooth depth model for the image (an approximation: the photos are 2-D).
    """

    anchor: np.ndarray  # (2,) photo pixels: the face centre
    centre: np.ndarray  # (T, 2) frame pixels
    scale: np.ndarray  # (T,)
    roll: np.ndarray  # (T,) radians
    yaw: np.ndarray  # (T,) radians, 0 = as photographed

    def affine(self, index: int) -> np.ndarray:
        """(2, 3) photo -> frame map of the frame (the similarity part)."""
        cos, sin = np.cos(self.roll[index]), np.sin(self.roll[index])
        linear = self.scale[index] * np.array([[cos, -sin], [sin, cos]])
        offset = self.centre[index] - linear @ self.anchor
        return np.concatenate([linear, offset[:, None]], axis=1)

    def place(self, points: np.ndarray, index: int) -> np.ndarray:
        affine = self.affine(index)
        return (points @ affine[:, :2].T + affine[:, 2]).astype(np.float32)


def smooth_motion(rng: np.random.Generator, count: int, frame_rate: float, amplitude: float,
                  slowest: float = 0.15, fastest: float = 0.8) -> np.ndarray:  # fmt: skip
    """(count,) a smooth random drift: a few sines of random frequency (Hz) and phase, peak ~amplitude."""
    times = np.arange(count) / frame_rate
    total = np.zeros(count)
    for _ in range(3):
        frequency = rng.uniform(slowest, fastest)
        total += np.sin(2 * np.pi * frequency * times + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.3, 1.0)
    return total * amplitude / 2.0


@dataclass
class Scene:
    size: tuple[int, int]  # (height, width)
    count: int
    frame_rate: float
    speaker: Person
    pose: HeadPose
    graded: np.ndarray  # the speaker's photo after colour grading, float32 0..255
    background: np.ndarray  # (H, W, 3) float32
    blinks: np.ndarray  # (T,) eyelid closure 0..1
    mouth_shade: float  # the light on the lips: scales the colours of the mouth's inside
    details: dict = field(default_factory=dict)  # what meta.json reports about the scene

    def place_speaker(self, points: np.ndarray, index: int) -> np.ndarray:
        """Photo points of the speaker -> frame pixels at frame `index`."""
        return self.pose.place(points, index)

    def draw(self, index: int) -> np.ndarray:
        """The frame before the speaker's mouth is rendered: background + placed, graded person."""
        height, width = self.size
        affine = self.pose.affine(index).astype(np.float64)
        person_pixels = cv2.warpAffine(
            self.graded, affine, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        alpha = cv2.warpAffine(self.speaker.matte, affine, (width, height), flags=cv2.INTER_LINEAR)
        frame = self.background + alpha[:, :, None] * (person_pixels - self.background)
        return np.clip(np.round(frame), 0, 255).astype(np.uint8)


def grade(image: np.ndarray, gains: np.ndarray, gamma: float, lift: float) -> np.ndarray:
    """Colour grading: per-channel gains, a gamma and a black lift (float32 0..255 out)."""
    pixels = image.astype(np.float32) / 255.0
    pixels = np.clip(pixels * gains[None, None, :], 0.0, 1.0) ** gamma
    return (lift + (1.0 - lift) * pixels) * 255.0


def background(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """A backdrop: a colour gradient, a blurred texture or a blurred region of another photo."""
    height, width = size
    kind = ("gradient", "texture", "photo")[int(rng.integers(0, 3))]
    if kind == "gradient":
        start, end = rng.uniform(20, 235, size=3), rng.uniform(20, 235, size=3)
        angle = rng.uniform(0, 2 * np.pi)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        ramp = (xs / width - 0.5) * np.cos(angle) + (ys / height - 0.5) * np.sin(angle)
        ramp = np.clip(ramp + 0.5, 0.0, 1.0)[:, :, None]
        return (start + ramp * (end - start)).astype(np.float32), kind
    from skimage import data

    if kind == "texture":
        name = ("brick", "grass", "gravel", "coffee", "rocket", "chelsea", "hubble_deep_field")[
            int(rng.integers(0, 7))
        ]
        source = getattr(data, name)()
    else:
        name = ("astronaut", "coffee", "motorcycle_left", "rocket")[int(rng.integers(0, 4))]
        source = data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(data, name)()
    if source.ndim == 2:
        source = np.repeat(source[:, :, None], 3, axis=2)
    source = source[:, :, :3]
    # A random crop, scaled to the frame and blurred like an out-of-focus backdrop.
    crop_h = int(source.shape[0] * rng.uniform(0.4, 0.8))
    crop_w = min(source.shape[1], max(8, int(crop_h * width / height)))
    top = int(rng.integers(0, source.shape[0] - crop_h + 1))
    left = int(rng.integers(0, source.shape[1] - crop_w + 1))
    crop = cv2.resize(source[top : top + crop_h, left : left + crop_w], (width, height))
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1]
    blurred = cv2.GaussianBlur(crop.astype(np.float32), (0, 0), max(1.0, rng.uniform(0.004, 0.02) * width))
    return blurred, f"{kind}:{name}"
