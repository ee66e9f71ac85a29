"""What source and target share: the people (photo variant, colour grade), where and how their heads move,
the background, blinks. Drawing a frame of the scene gives everything but the speaker's mouth.

A head is a photo placed by a per-frame similarity (scale, roll, translation drifting smoothly) after a
planar perspective rotation about the head's vertical axis for turned heads (`yaw`): the photos are 2-D, so
a turned head is the photo foreshortened as a plane seen from the side (the far half shrinks, the near half
grows); nothing gets hidden and the nose does not turn. The mesh goes through the same 3x3 map, so the
landmarks stay exact. A soft matte (head ellipse + shoulders, from the mesh) cuts the person out of the
photo onto a new background.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

from model.synth.faces import FacePhoto, load_photo
from model.synth.mouth import MouthRig, build_rig
from model.synth.warp import warp_region

# Eyelids (MediaPipe face mesh): upper and lower contours of each eye, corners excluded.
EYES = (
    ((246, 161, 160, 159, 158, 157, 173), (7, 163, 144, 145, 153, 154, 155), (33, 133)),
    ((466, 388, 387, 386, 385, 384, 398), (249, 390, 373, 374, 380, 381, 382), (263, 362)),
)


@dataclass(frozen=True)
class EyeRig:
    upper: np.ndarray  # mesh indices of the upper lid
    lower: np.ndarray
    points: np.ndarray  # mesh indices warped (both lids and corners)
    ring: np.ndarray  # (n, 2) fixed points around the eye, photo pixels
    triangles: np.ndarray  # into concat(mesh[points], ring)


@dataclass(frozen=True)
class Person:
    photo_id: str
    mirrored: bool
    photo: FacePhoto
    rig: MouthRig
    eyes: tuple[EyeRig, EyeRig]
    canvas: np.ndarray  # (h + extra, w, 3) uint8 the photo, its bottom rows continued downwards
    matte: np.ndarray  # (h + extra, w) float32 the person on the canvas

    @property
    def face_height(self) -> float:
        return float(np.linalg.norm(self.photo.mesh[152] - self.photo.mesh[10]))

    def blink(self, mesh: np.ndarray, closure: float) -> np.ndarray:
        """The mesh with the eyelids `closure` (0 open .. 1 shut) of the way closed (photo pixels)."""
        if closure <= 0.0:
            return mesh
        moved = mesh.copy()
        for eye in self.eyes:
            upper, lower = mesh[eye.upper], mesh[eye.lower]
            # The upper lid comes down most of the way, the lower lid rises to meet it.
            meet = lower + (upper - lower) * 0.2
            moved[eye.upper] = upper + (meet - upper) * closure
            moved[eye.lower] = lower + (meet - lower) * closure
        return moved


@functools.cache
def person(photo_id: str, mirrored: bool) -> Person:
    """A photo (or its mirror image, detected anew so the mesh keeps its left/right meaning) and its rigs."""
    photo = load_photo(photo_id, mirrored)
    eyes = (_eye_rig(photo.mesh, *EYES[0]), _eye_rig(photo.mesh, *EYES[1]))
    # The clothes continue below the photo (its bottom rows repeated), so the body reaches the bottom of the
    # frame however small and high the face is placed.
    extra = 4 * round(float(np.linalg.norm(photo.mesh[152] - photo.mesh[10])))
    canvas = cv2.copyMakeBorder(photo.image, 0, extra, 0, 0, cv2.BORDER_REPLICATE)
    matte = cv2.copyMakeBorder(_matte(photo), 0, extra, 0, 0, cv2.BORDER_REPLICATE)
    return Person(photo_id, mirrored, photo, build_rig(photo.mesh), eyes, canvas, matte)


def _eye_rig(mesh: np.ndarray, upper: tuple, lower: tuple, corners: tuple) -> EyeRig:
    from scipy.spatial import Delaunay

    indices = np.array([*upper, *lower, *corners])
    eye = mesh[indices].astype(np.float64)
    centre = eye.mean(axis=0)
    width = float(np.linalg.norm(mesh[corners[0]] - mesh[corners[1]]))
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = centre + np.stack([np.cos(angles) * 0.85 * width, np.sin(angles) * 0.6 * width], axis=1)
    triangles = Delaunay(np.concatenate([eye, ring])).simplices.astype(np.int32)
    return EyeRig(np.asarray(upper), np.asarray(lower), indices, ring.astype(np.float32), triangles)


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
    """Per-frame placement of a photo: a planar perspective turn by `yaw` about the vertical axis through
    `anchor`, then frame = centre + scale * R(roll) * (p - anchor)."""

    anchor: np.ndarray  # (2,) photo pixels: the face centre
    centre: np.ndarray  # (T, 2) frame pixels
    scale: np.ndarray  # (T,)
    roll: np.ndarray  # (T,) radians
    yaw: np.ndarray  # (T,) radians, 0 = as photographed
    focal: float  # photo pixels: the virtual camera's distance for the perspective of turns

    def matrix(self, index: int) -> np.ndarray:
        """(3, 3) photo -> frame homography of the frame."""
        cos, sin = np.cos(self.roll[index]), np.sin(self.roll[index])
        similarity = np.eye(3)
        similarity[:2, :2] = self.scale[index] * np.array([[cos, -sin], [sin, cos]])
        similarity[:2, 2] = self.centre[index]
        yaw = float(self.yaw[index])
        to_anchor = np.array([[1.0, 0.0, -self.anchor[0]], [0.0, 1.0, -self.anchor[1]], [0.0, 0.0, 1.0]])
        if yaw == 0.0:
            return similarity @ to_anchor
        # A plane turned by yaw, seen by a pinhole camera `focal` away: x' = f x cos / (f - x sin).
        turn = np.array(
            [[self.focal * np.cos(yaw), 0.0, 0.0], [0.0, self.focal, 0.0], [-np.sin(yaw), 0.0, self.focal]]
        )
        return similarity @ turn @ to_anchor

    def place(self, points: np.ndarray, index: int) -> np.ndarray:
        matrix = self.matrix(index)
        mapped = points @ matrix[:2, :2].T + matrix[:2, 2]
        weight = points @ matrix[2, :2] + matrix[2, 2]
        return (mapped / weight[:, None]).astype(np.float32)


def smooth_motion(rng: np.random.Generator, count: int, frame_rate: float, amplitude: float,
                  slowest: float = 0.15, fastest: float = 0.8) -> np.ndarray:  # fmt: skip
    """(count,) a smooth random drift: a few sines of random frequency (Hz) and phase, peak ~amplitude."""
    times = np.arange(count) / frame_rate
    total = np.zeros(count)
    for _ in range(3):
        frequency = rng.uniform(slowest, fastest)
        total += np.sin(2 * np.pi * frequency * times + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.3, 1.0)
    return total * amplitude / 2.0


def blink_track(rng: np.random.Generator, count: int, frame_rate: float) -> np.ndarray:
    """(count,) eyelid closure: a blink every 2-5 s, ~70 ms closing and ~130 ms opening."""
    closure = np.zeros(count, np.float32)
    times = np.arange(count) / frame_rate
    moment = rng.uniform(0.2, 2.5)
    while moment < count / frame_rate:
        closing, opening = rng.uniform(0.05, 0.09), rng.uniform(0.1, 0.16)
        rise = np.clip((times - (moment - closing)) / closing, 0.0, 1.0)
        fall = np.clip(1.0 - (times - moment) / opening, 0.0, 1.0)
        closure = np.maximum(closure, np.where(times <= moment, rise, fall).astype(np.float32))
        moment += rng.uniform(2.0, 5.0)
    return closure


@dataclass
class Placed:
    """One person in the scene."""

    person: Person
    pose: HeadPose
    graded: np.ndarray  # the photo after colour grading, uint8
    blinks: np.ndarray  # (T,) eyelid closure


@dataclass
class Scene:
    size: tuple[int, int]  # (height, width)
    count: int
    frame_rate: float
    people: list[Placed]  # the speaker first; any others listen with their mouths shut
    background: np.ndarray  # (H, W, 3) uint8
    mouth_shade: float  # the light on the speaker's lips: scales the colours of the mouth's inside
    details: dict = field(default_factory=dict)  # what meta.json reports about the scene

    @property
    def speaker(self) -> Person:
        return self.people[0].person

    def place_speaker(self, points: np.ndarray, index: int) -> np.ndarray:
        """Photo points of the speaker -> frame pixels at frame `index`."""
        return self.people[0].pose.place(points, index)

    def speaker_mesh(self, mesh: np.ndarray, index: int) -> np.ndarray:
        """A speaker's photo-space mesh with this frame's blink, placed in the frame."""
        placed = self.people[0]
        return placed.pose.place(placed.person.blink(mesh, float(placed.blinks[index])), index)

    def listener_mesh(self, index: int, which: int = 1) -> np.ndarray:
        placed = self.people[which]
        rest = placed.person.rig.rest
        return placed.pose.place(placed.person.blink(rest, float(placed.blinks[index])), index)

    def draw(self, index: int) -> np.ndarray:
        """The frame before the speaker's mouth is rendered: background, people, blinks, shut listeners."""
        height, width = self.size
        image = self.background
        for placed in reversed(self.people):  # the speaker last, in front
            matrix = placed.pose.matrix(index)
            if matrix[2, 0] == 0.0 and matrix[2, 1] == 0.0:
                pixels = cv2.warpAffine(
                    placed.graded, matrix[:2], (width, height), borderMode=cv2.BORDER_REPLICATE
                )
                alpha = cv2.warpAffine(placed.person.matte, matrix[:2], (width, height))
            else:
                pixels = cv2.warpPerspective(
                    placed.graded, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE
                )
                alpha = cv2.warpPerspective(placed.person.matte, matrix, (width, height))
            image = cv2.blendLinear(pixels, image, alpha, 1.0 - alpha)
        for which, placed in enumerate(self.people):
            person_, pose = placed.person, placed.pose
            closure = float(placed.blinks[index])
            if closure > 0.0:
                shut = person_.blink(person_.photo.mesh, closure)
                for eye in person_.eyes:
                    ring = pose.place(eye.ring, index)
                    warp_region(
                        image,
                        np.concatenate([pose.place(person_.photo.mesh[eye.points], index), ring]),
                        np.concatenate([pose.place(shut[eye.points], index), ring]),
                        eye.triangles,
                    )
            if which > 0:  # listeners: lips closed and still
                rig = person_.rig
                ring = pose.place(rig.ring, index)
                warp_region(
                    image,
                    np.concatenate([pose.place(rig.mesh[rig.warped], index), ring]),
                    np.concatenate([pose.place(rig.rest[rig.warped], index), ring]),
                    rig.triangles,
                )
        return image


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
        return np.round(start + ramp * (end - start)).astype(np.uint8), kind
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
    blurred = cv2.GaussianBlur(crop, (0, 0), max(1.0, rng.uniform(0.004, 0.02) * width))
    return np.ascontiguousarray(blurred), f"{kind}:{name}"
