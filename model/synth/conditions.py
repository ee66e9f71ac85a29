"""Conditions: named switches that change how a scene is shot, identically for source and target.

A condition sets the scene's `Layout` (face size and place, head turns, speed of motion, a second person)
and adds per-frame `Effects`: layers in front of the face (`front`, which returns the pixels it covers) and
whole-frame effects (`finish`). Effects depend only on the scene and the frame index, never on the mouth, so
source and target get exactly the same ones. Occluders have hard edges, so every pixel they cover is
entirely theirs (and identical in source and target).

- clean: nothing added.
- hard_shadow: a sharp shadow edge across the face (static in the frame, the head moves under it).
- occluder: a handheld microphone or a hand in front of the mouth, moving with the head.
- hair: strands of hair across the lips, swaying.
- dark: low light (gain 0.12-0.3, crushed gamma, a colour cast) and sensor noise (read + shot noise), the
  noise drawn per frame from the pair's seed, so it is the same in source and target.
- foliage: leaves of a foreground plant across part of the face, swaying.
- profile: the head turned 45-80 degrees (a planar perspective turn of the photo, see scene.HeadPose).
- head_turns: the head turning from side to side (up to +-50 degrees) while speaking.
- motion_blur: fast head motion and a directional blur along it (length capped at 9 % of the face height,
  so the mouth's changes stay inside the lower-face masks).
- small_face: the face 5-8 % of the frame height (<= 60 px at 720p).
- two_people: a second person, silent with still closed lips, beside the speaker.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from model.synth.scene import Scene
from worker.engine.analysis.face_landmarks import FACE_OVAL


@dataclass(frozen=True)
class Layout:
    """How the scene is framed; each condition changes some of these."""

    face_fraction: tuple[float, float] = (0.3, 0.5)  # face height (forehead to chin) / frame height
    centre_x: tuple[float, float] = (0.38, 0.62)  # of the frame width
    centre_y: tuple[float, float] = (0.42, 0.58)
    yaw_degrees: tuple[float, float] = (0.0, 0.0)  # a constant turn, either side
    yaw_swing_degrees: tuple[float, float] = (0.0, 0.0)  # amplitude of turning back and forth
    drift: float = 1.0  # scale of the head's wandering
    fastest_motion_hz: float = 0.8
    two_people: bool = False


LAYOUTS = {
    "profile": Layout(yaw_degrees=(45.0, 80.0), yaw_swing_degrees=(1.0, 4.0)),
    "head_turns": Layout(yaw_degrees=(0.0, 10.0), yaw_swing_degrees=(25.0, 50.0)),
    "motion_blur": Layout(drift=4.0, fastest_motion_hz=2.5),
    "small_face": Layout(face_fraction=(0.05, 0.08), centre_x=(0.15, 0.85), centre_y=(0.2, 0.8)),
    "two_people": Layout(face_fraction=(0.2, 0.3), two_people=True),
}


def layout_for(condition: str) -> Layout:
    return LAYOUTS.get(condition, Layout())


class Effects:
    """No effect at all (the `clean` condition)."""

    has_occluder = False
    has_listener = False

    def front(self, frame: np.ndarray, index: int) -> np.ndarray | None:
        """Draw layers in front of the face into `frame`; the (H, W) bool pixels they cover, or None."""
        return None

    def listener_pixels(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def finish(self, frame: np.ndarray, index: int) -> None:
        """Whole-frame effects, in place."""


class _FaceAnchored(Effects):
    """Shapes given in the speaker's face units (origin: the inner-lip midpoint; x along the eye line,
    y down; 1 = the outer-eye-corner distance), moving with the head."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        rig = scene.speaker.rig
        self._origin, self._across, self._down, self._unit = (
            rig.origin,
            rig.across,
            rig.down,
            rig.eye_distance,
        )

    def to_frame(self, points: np.ndarray, index: int) -> np.ndarray:
        points = np.asarray(points, np.float64).reshape(-1, 2)
        photo = self._origin + (points[:, :1] * self._across + points[:, 1:] * self._down) * self._unit
        return self.scene.place_speaker(photo, index)

    def face_size(self, index: int) -> float:
        """The outer-eye-corner distance in frame pixels at this frame."""
        ends = self.to_frame(np.array([[0.0, 0.0], [1.0, 0.0]]), index)
        return float(np.linalg.norm(ends[1] - ends[0]))


def _fill(layer: np.ndarray, points: np.ndarray) -> None:
    cv2.fillPoly(layer, [np.round(points).astype(np.int32)], 1)


def _capsule(start: np.ndarray, end: np.ndarray, radius: float, steps: int = 10) -> np.ndarray:
    """Outline of a rounded bar from start to end (frame pixels)."""
    direction = end - start
    angle = np.arctan2(direction[1], direction[0])
    first = np.linspace(angle + np.pi / 2, angle + 3 * np.pi / 2, steps)
    second = np.linspace(angle - np.pi / 2, angle + np.pi / 2, steps)
    return np.concatenate(
        [start + radius * np.stack([np.cos(first), np.sin(first)], 1),
         end + radius * np.stack([np.cos(second), np.sin(second)], 1)]
    )  # fmt: skip


class HandheldOccluder(_FaceAnchored):
    """A microphone held in front of the mouth, or a hand across it."""

    has_occluder = True

    def __init__(self, rng: np.random.Generator, scene: Scene) -> None:
        super().__init__(scene)
        self.kind = "microphone" if rng.uniform() < 0.5 else "hand"
        self.side = float(rng.choice([-1.0, 1.0]))
        self.offset = np.array([rng.uniform(0.05, 0.35) * self.side, rng.uniform(0.2, 0.45)])
        self.tilt = rng.uniform(-0.5, 0.5)
        self.wobble = np.stack(
            [np.sin(np.arange(scene.count) / scene.frame_rate * rng.uniform(0.5, 1.5) * 2 * np.pi + phase)
             for phase in rng.uniform(0, 2 * np.pi, size=2)], 1
        ) * 0.04  # fmt: skip
        lips = scene.speaker.photo.mesh[[50, 280]].astype(int)  # cheeks: the hand gets the face's skin tone
        skin = scene.people[0].graded[lips[:, 1], lips[:, 0]].astype(np.float64).mean(axis=0)
        self.skin = np.clip(skin * rng.uniform(0.85, 1.05), 0, 255)
        self.dark = np.array([28, 28, 30]) * rng.uniform(0.8, 1.6)

    def front(self, frame: np.ndarray, index: int) -> np.ndarray | None:
        height, width = frame.shape[:2]
        centre = self.offset + self.wobble[index]
        unit = self.face_size(index)
        layer = np.zeros((height, width), np.uint8)
        shading = np.zeros((height, width), np.uint8)
        if self.kind == "microphone":
            ball, handle_end = self.to_frame(np.array([centre, centre + np.array([self.tilt, 3.0])]), index)
            _fill(layer, _capsule(ball, handle_end, 0.14 * unit))
            cv2.circle(
                layer, (round(float(ball[0])), round(float(ball[1]))), max(2, round(0.3 * unit)), 1, -1
            )
            # The grille: a lighter mesh on the ball.
            radius = max(2, round(0.3 * unit))
            for offset in range(-radius, radius + 1, max(2, radius // 4)):
                cv2.line(shading, (round(float(ball[0])) + offset, round(float(ball[1])) - radius),
                         (round(float(ball[0])) + offset, round(float(ball[1])) + radius), 1, 1)  # fmt: skip
            colour = self.dark
            highlight = self.dark * 2.6
        else:
            palm = self.to_frame(np.array([centre + np.array([0.55 * self.side, 0.55])]), index)[0]
            for finger in range(4):
                base = centre + np.array([0.35 * self.side, 0.05 + 0.17 * finger])
                tip = base + np.array([-(0.95 - 0.08 * abs(finger - 1.5)) * self.side, self.tilt * 0.3])
                ends = self.to_frame(np.array([base, tip]), index)
                _fill(layer, _capsule(ends[0], ends[1], 0.085 * unit))
                cv2.line(
                    shading, tuple(np.round(ends[0]).astype(int)), tuple(np.round(ends[1]).astype(int)), 1, 1
                )
            axes = (max(2, round(0.45 * unit)), max(2, round(0.55 * unit)))
            cv2.ellipse(layer, (round(float(palm[0])), round(float(palm[1]))), axes, 0, 0, 360, 1, -1)
            colour = self.skin
            highlight = self.skin * 0.8  # creases between fingers
        covered = layer.astype(bool)
        lines = covered & shading.astype(bool)
        frame[covered] = np.clip(colour, 0, 255).astype(np.uint8)
        frame[lines] = np.clip(highlight, 0, 255).astype(np.uint8)
        return covered


class Hair(_FaceAnchored):
    """Strands of hair falling across the lips, swaying together."""

    has_occluder = True

    def __init__(self, rng: np.random.Generator, scene: Scene) -> None:
        super().__init__(scene)
        palette = np.array([[40, 28, 20], [90, 60, 35], [170, 130, 80], [215, 190, 140], [120, 50, 25]])
        self.colour = palette[int(rng.integers(0, len(palette)))] * rng.uniform(0.8, 1.1)
        count = int(rng.integers(8, 22))
        side = float(rng.choice([-1.0, 1.0]))
        self.strands = []
        for _ in range(count):
            top = np.array([side * rng.uniform(0.2, 0.9), rng.uniform(-2.0, -1.2)])
            bottom = np.array([side * rng.uniform(-0.5, 0.3), rng.uniform(0.6, 1.3)])
            bend = (top + bottom) / 2 + [side * rng.uniform(-0.3, 0.2), 0.0]
            self.strands.append((top, bend, bottom, rng.uniform(0, 2 * np.pi), rng.uniform(0.8, 1.6)))
        self.sway_hz = rng.uniform(0.3, 0.9)

    def front(self, frame: np.ndarray, index: int) -> np.ndarray | None:
        height, width = frame.shape[:2]
        layer = np.zeros((height, width), np.uint8)
        time = index / self.scene.frame_rate
        thickness = max(1, round(0.018 * self.face_size(index)))
        steps = np.linspace(0, 1, 24)[:, None]
        for top, bend, bottom, phase, weight in self.strands:
            sway = np.array([0.06 * weight * np.sin(2 * np.pi * self.sway_hz * time + phase), 0.0])
            curve = (
                (1 - steps) ** 2 * top + 2 * (1 - steps) * steps * (bend + sway) + steps**2 * (bottom + sway)
            )
            points = np.round(self.to_frame(curve, index)).astype(np.int32)
            cv2.polylines(layer, [points], False, 1, thickness, cv2.LINE_8)
        covered = layer.astype(bool)
        frame[covered] = np.clip(self.colour, 0, 255).astype(np.uint8)
        return covered


class Foliage(Effects):
    """Leaves of a plant in the foreground, over one side of the face, swaying (fixed in the frame)."""

    has_occluder = True

    def __init__(self, rng: np.random.Generator, scene: Scene) -> None:
        self.scene = scene
        mesh = scene.place_speaker(scene.speaker.rig.rest, 0)
        unit = float(np.linalg.norm(mesh[263] - mesh[33]))
        side = float(rng.choice([-1.0, 1.0]))
        # The cluster sits on one side of the face and reaches over part of the mouth.
        mouth = (mesh[61] + mesh[291]) / 2
        centre = mouth + np.array([side * rng.uniform(0.5, 0.9) * unit, rng.uniform(-0.6, 0.4) * unit])
        self.leaves = []
        for _ in range(int(rng.integers(14, 32))):  # at most 127 leaves fit the labels
            position = centre + rng.normal(0, 0.45 * unit, size=2)
            length = rng.uniform(0.35, 0.8) * unit
            angle = rng.uniform(0, 180)
            green = np.array([rng.uniform(20, 80), rng.uniform(70, 150), rng.uniform(10, 60)])
            self.leaves.append((position, length, angle, green, rng.uniform(0, 2 * np.pi)))
        self.sway_hz = rng.uniform(0.2, 0.7)
        self.sway = 0.06 * unit

    def front(self, frame: np.ndarray, index: int) -> np.ndarray | None:
        height, width = frame.shape[:2]
        # One label image: leaf k is 2k+1, its vein 2k+2; later leaves cover earlier ones.
        labels = np.zeros((height, width), np.uint8)
        palette = np.zeros((256, 3), np.uint8)
        time = index / self.scene.frame_rate
        for number, (position, length, angle, green, phase) in enumerate(self.leaves):
            moved = position + self.sway * np.array([np.sin(2 * np.pi * self.sway_hz * time + phase), 0.3])
            centre = (round(float(moved[0])), round(float(moved[1])))
            axes = (max(1, round(length / 2)), max(1, round(length / 5)))
            tilt = float(angle + 8 * np.sin(2 * np.pi * self.sway_hz * time + phase))
            cv2.ellipse(labels, centre, axes, tilt, 0, 360, 2 * number + 1, -1)
            cv2.ellipse(labels, centre, (max(1, axes[0] - 1), 0), tilt, 0, 360, 2 * number + 2, 1)
            palette[2 * number + 1] = np.clip(green, 0, 255)
            palette[2 * number + 2] = np.clip(green * 0.6, 0, 255)
        covered = labels > 0
        frame[covered] = palette[labels[covered]]
        return covered


class HardShadow(Effects):
    """A sharp shadow edge across the face: one side of a line darker and cooler."""

    def __init__(self, rng: np.random.Generator, scene: Scene) -> None:
        height, width = scene.size
        mesh = scene.place_speaker(scene.speaker.rig.rest, 0)
        unit = float(np.linalg.norm(mesh[263] - mesh[33]))
        through = mesh.mean(axis=0) + rng.uniform(-0.4, 0.4, size=2) * unit
        angle = rng.uniform(0, np.pi)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        distance = (xs - through[0]) * np.sin(angle) - (ys - through[1]) * np.cos(angle)
        softness = rng.uniform(0.5, 1.5)
        lit = np.clip(0.5 + distance / (2 * softness), 0.0, 1.0)
        darkness = rng.uniform(0.3, 0.55)
        tint = np.array([0.95, 1.0, 1.12])
        self.gain = (lit[:, :, None] + (1 - lit[:, :, None]) * darkness * tint).astype(np.float32)

    def finish(self, frame: np.ndarray, index: int) -> None:
        frame[:] = np.clip(np.round(frame * self.gain), 0, 255).astype(np.uint8)


class Dark(Effects):
    """Low light and sensor noise; the noise of frame k is drawn from (pair seed, k): same in both clips."""

    def __init__(self, rng: np.random.Generator, scene: Scene) -> None:
        self.gain = rng.uniform(0.12, 0.3)
        self.gamma = rng.uniform(1.1, 1.4)
        self.cast = np.array([rng.uniform(0.85, 1.0), 1.0, rng.uniform(1.0, 1.2)], np.float32)
        self.read_noise = rng.uniform(1.5, 4.0)
        self.shot_noise = rng.uniform(0.3, 0.8)
        self.entropy = int(rng.integers(0, 2**63))
        self._noise: tuple[int, np.ndarray] | None = None

    def finish(self, frame: np.ndarray, index: int) -> None:
        light = (frame.astype(np.float32) / 255.0) ** self.gamma * (255.0 * self.gain) * self.cast
        if self._noise is None or self._noise[0] != index:  # drawn once per frame, shared by the clips
            rng = np.random.default_rng([self.entropy, index])
            self._noise = (index, rng.standard_normal(frame.shape, dtype=np.float32))
        noise = self._noise[1]
        sigma = np.sqrt(self.read_noise**2 + self.shot_noise**2 * light)
        frame[:] = np.clip(np.round(light + noise * sigma), 0, 255).astype(np.uint8)


class MotionBlur(Effects):
    """A directional blur along the head's motion in each frame (a shutter open over part of the frame)."""

    def __init__(self, rng: np.random.Generator, scene: Scene) -> None:
        self.scene = scene
        self.shutter = rng.uniform(0.5, 1.0)
        mesh = scene.place_speaker(scene.speaker.rig.rest, 0)
        self.longest = 0.09 * float(np.linalg.norm(mesh[152] - mesh[10]))

    def finish(self, frame: np.ndarray, index: int) -> None:
        pose = self.scene.people[0].pose
        before, after = max(0, index - 1), min(self.scene.count - 1, index + 1)
        velocity = (pose.centre[after] - pose.centre[before]) / max(1, after - before)
        length = min(float(np.linalg.norm(velocity)) * self.shutter, self.longest)
        if length < 1.0:
            return
        size = int(np.ceil(length)) | 1
        kernel = np.zeros((size, size), np.float32)
        half = (size - 1) / 2
        direction = velocity / max(float(np.linalg.norm(velocity)), 1e-6) * (length - 1) / 2
        start = (round(half - direction[0]), round(half - direction[1]))
        end = (round(half + direction[0]), round(half + direction[1]))
        cv2.line(kernel, start, end, 1.0, 1)
        kernel /= kernel.sum()
        frame[:] = cv2.filter2D(frame, -1, kernel, borderType=cv2.BORDER_REFLECT)


class SecondPerson(Effects):
    """The silent listener of two_people: the scene draws them; this reports their face's pixels."""

    has_listener = True

    def __init__(self, scene: Scene) -> None:
        self.scene = scene

    def listener_pixels(self, index: int) -> np.ndarray:
        mesh = self.scene.listener_mesh(index)
        pixels = np.zeros(self.scene.size, np.uint8)
        _fill(pixels, mesh[list(FACE_OVAL)])
        return pixels.astype(bool)


def effects_for(condition: str, rng: np.random.Generator, scene: Scene) -> Effects:
    if condition == "hard_shadow":
        return HardShadow(rng, scene)
    if condition == "occluder":
        return HandheldOccluder(rng, scene)
    if condition == "hair":
        return Hair(rng, scene)
    if condition == "dark":
        return Dark(rng, scene)
    if condition == "foliage":
        return Foliage(rng, scene)
    if condition == "motion_blur":
        return MotionBlur(rng, scene)
    if condition == "two_people":
        return SecondPerson(scene)
    return Effects()
