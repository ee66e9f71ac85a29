"""The talking mouth: a face mesh moved by articulation parameters, and the mouth's inside drawn in.

Geometry works in the face's own axes (x along the eye line, y down, in units of the outer-eye-corner
distance E) relative to the inner-lip midline:

- the photo's own lips are first closed onto their midline (the "rest" face: relaxed, mouth shut);
- the jaw lowers the lower lip, chin and jaw line (less towards the jaw angles) and lifts the upper lip a
  little; lip closure keeps the lips together whatever the jaw does (the chin still drops);
- rounding pulls the mouth corners in, spread pushes them out; labiodental lifts the upper lip off the teeth.

The image follows the mesh through a piecewise-affine warp (Delaunay triangles of the mesh points inside a
fixed ring: the engine's lower-face polygon of the rest face), so nothing
outside the lower face moves. The mouth's inside (dark cavity, a hint of tongue, upper and lower teeth whose
visibility follows `teeth`) is drawn between the rendered inner lips.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from model.synth.visemes import CLOSURE, JAW, LABIODENTAL, ROUNDING, SPREAD, TEETH
from worker.engine.analysis.face_landmarks import KEPT
from worker.engine.analysis.masks import lower_face_polygon

UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
INNER_CONTOUR = (*UPPER_INNER, *LOWER_INNER[-2:0:-1])  # closed loop: upper left->right, lower right->left

# Displacements at full parameter value, in units of E (the outer-eye-corner distance).
LOWER_LIP_DROP = 0.26
UPPER_LIP_RISE = 0.035
CHIN_DROP = 0.2
LABIODENTAL_RISE = 0.05
ROUNDING_PULL = 0.3
SPREAD_PUSH = 0.16
RING_POINTS = 40


def _smoothstep(value: np.ndarray | float) -> np.ndarray:
    clipped = np.clip(value, 0.0, 1.0)
    return clipped * clipped * (3 - 2 * clipped)


@dataclass(frozen=True)
class MouthRig:
    mesh: np.ndarray  # (478, 2) the photo's mesh
    rest: np.ndarray  # (478, 2) the same face with the lips closed
    origin: np.ndarray  # (2,) inner-lip midpoint
    across: np.ndarray  # (2,) unit eye-line axis
    down: np.ndarray  # (2,)
    eye_distance: float
    line_x: np.ndarray  # inner-lip midline samples (face x, ascending)
    line_y: np.ndarray
    half_width: float  # half the mouth width (face units, pixels)
    lower: np.ndarray  # (478,) 0 = moves with the upper lip, 1 = with the lower lip and jaw
    ring: np.ndarray  # (RING_POINTS, 2) fixed points around the warped region
    warped: np.ndarray  # indices of the mesh points inside the ring
    triangles: np.ndarray  # (n, 3) into concat(mesh[warped], ring)

    def _coords(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        relative = points - self.origin
        return relative @ self.across, relative @ self.down

    def articulate(self, parameters: np.ndarray) -> np.ndarray:
        """(478, 2) mesh positions (photo pixels) for one frame's (K,) parameters."""
        unit = self.eye_distance
        x, y = self._coords(self.rest)
        above_line = y - np.interp(x, self.line_x, self.line_y)
        closure = _smoothstep((float(parameters[CLOSURE]) - 0.35) / 0.5)
        jaw = float(np.clip(parameters[JAW], 0.0, 1.2))
        lips_open = jaw * (1.0 - closure)
        labio = float(parameters[LABIODENTAL]) * (1.0 - closure)
        # Lower part: the jaw (chin) drops; the lower lip drops more, as the lips part.
        jaw_weight = np.clip(1.0 - (x / (1.1 * unit)) ** 2, 0.0, 1.0) ** 0.7
        lip_band = np.exp(-np.clip(above_line, 0.0, None) / (0.12 * unit))
        # Lips part most in the middle and little at the corners: an oval opening.
        profile = np.clip(1.0 - (x / (1.15 * self.half_width)) ** 2, 0.0, 1.0) ** 0.6
        lip_drop = LOWER_LIP_DROP * lips_open * (0.25 + 0.75 * profile)
        lower_dy = jaw_weight * (CHIN_DROP * jaw + (lip_drop - CHIN_DROP * jaw) * lip_band)
        # Upper part: the upper lip lifts near the mouth only.
        beyond_corner = np.clip(np.abs(x) - self.half_width, 0.0, None)
        mouth_x = np.exp(-((beyond_corner / (0.15 * unit)) ** 2))
        upper_dy = -(UPPER_LIP_RISE * lips_open + LABIODENTAL_RISE * labio) * mouth_x * (0.3 + 0.7 * profile)
        upper_dy = upper_dy * np.exp(-np.clip(-above_line, 0.0, None) / (0.08 * unit))
        dy = unit * (self.lower * lower_dy + (1.0 - self.lower) * upper_dy)
        # Corners in (rounding) or out (spread), strongest around the mouth.
        squeeze = -ROUNDING_PULL * float(parameters[ROUNDING]) + SPREAD_PUSH * float(parameters[SPREAD])
        around = np.exp(-((x / (0.75 * unit)) ** 2) - (above_line / (0.3 * unit)) ** 2)
        dx = x * squeeze * around
        moved = self.rest + dx[:, None] * self.across + dy[:, None] * self.down
        # Points outside the ring are not warped, so they stay where the picture shows them.
        moved[self.outside] = self.mesh[self.outside]
        return moved.astype(np.float32)

    @property
    def outside(self) -> np.ndarray:
        keep = np.ones(len(self.mesh), bool)
        keep[self.warped] = False
        return keep


def build_rig(mesh: np.ndarray) -> MouthRig:
    """The mouth rig of one photo's mesh (computed once per photo by the caller's cache)."""
    mesh = mesh.astype(np.float64)
    eye_distance = float(np.linalg.norm(mesh[263] - mesh[33]))
    across = (mesh[263] - mesh[33]) / eye_distance
    down = np.array([-across[1], across[0]])
    origin = (mesh[13] + mesh[14]) / 2
    relative = mesh - origin
    x, y = relative @ across, relative @ down
    upper, lower_ = np.asarray(UPPER_INNER), np.asarray(LOWER_INNER)
    mid_x = (x[upper] + x[lower_]) / 2
    mid_y = (y[upper] + y[lower_]) / 2
    gaps = np.clip(y[lower_] - y[upper], 0.0, None)
    order = np.argsort(mid_x)
    line_x, line_y, gap = mid_x[order], mid_y[order], gaps[order]
    half_width = float(max(abs(line_x[0]), abs(line_x[-1])))
    # Which side of the lips each point belongs to: by index on the inner lips, by position elsewhere.
    softness = 0.015 * eye_distance + 0.4 * np.clip(np.abs(x) - half_width, 0.0, None)
    side = (y - np.interp(x, line_x, line_y)) / softness
    lower = 1.0 / (1.0 + np.exp(-np.clip(side, -30, 30)))
    lower[upper] = 0.0
    lower[lower_] = 1.0
    lower[[78, 308]] = 0.5
    # Close the photo's own lips onto their midline; the lips' body follows with distance.
    distance = np.abs(y - np.interp(x, line_x, line_y))
    half_gap = np.interp(x, line_x, gap, left=0.0, right=0.0) / 2
    closing = half_gap * np.exp(-np.clip(distance - half_gap, 0.0, None) / (0.06 * eye_distance))
    rest = mesh + ((1.0 - 2.0 * lower) * closing)[:, None] * down
    rest[[78, 308]] = mesh[[78, 308]]
    # Fixed ring: the engine's mask polygon for the rest face (where that mask is still ~0.93; it fades to 0
    # about 2.7 feather sigmas further out), so every changed pixel lies well inside the masks.
    polygon, _sigma = lower_face_polygon(rest[list(KEPT)].astype(np.float32))
    ring = _resample_loop(polygon.astype(np.float64), RING_POINTS)
    contour = ring.astype(np.float32).reshape(-1, 1, 2)
    inside = np.array([cv2.pointPolygonTest(contour, (float(px), float(py)), True) > 1.0 for px, py in mesh])
    warped = np.flatnonzero(inside)
    triangles = Delaunay(np.concatenate([mesh[warped], ring])).simplices.astype(np.int32)
    return MouthRig(
        mesh=mesh.astype(np.float32),
        rest=rest.astype(np.float32),
        origin=origin,
        across=across,
        down=down,
        eye_distance=eye_distance,
        line_x=line_x,
        line_y=line_y,
        half_width=half_width,
        lower=lower,
        ring=ring.astype(np.float32),
        warped=warped,
        triangles=triangles,
    )


def _resample_loop(polygon: np.ndarray, count: int) -> np.ndarray:
    closed = np.concatenate([polygon, polygon[:1]])
    lengths = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    positions = np.concatenate([[0.0], np.cumsum(lengths)])
    wanted = np.linspace(0.0, positions[-1], count, endpoint=False)
    return np.stack(
        [np.interp(wanted, positions, closed[:, 0]), np.interp(wanted, positions, closed[:, 1])], 1
    )


def draw_interior(frame: np.ndarray, mesh: np.ndarray, parameters: np.ndarray, shade: float) -> None:
    """Paint the mouth's inside between the rendered inner lips of `mesh` (frame pixels), in place.

    `shade` scales the colours to the face's light (1 = the photo's lips as photographed).
    """
    contour = mesh[list(INNER_CONTOUR)].astype(np.float32)
    gap = float(np.linalg.norm(mesh[14] - mesh[13]))
    if gap < 0.3:
        return
    height, width = frame.shape[:2]
    x0 = max(0, int(np.floor(contour[:, 0].min())) - 2)
    y0 = max(0, int(np.floor(contour[:, 1].min())) - 2)
    x1 = min(width, int(np.ceil(contour[:, 0].max())) + 3)
    y1 = min(height, int(np.ceil(contour[:, 1].max())) + 3)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    offset = np.array([x0, y0], np.float32)
    eye = float(np.linalg.norm(mesh[263] - mesh[33]))
    down = mesh[14] - mesh[13]
    down = down / max(float(np.linalg.norm(down)), 1e-6)
    patch_shape = (y1 - y0, x1 - x0)

    def fill(points: np.ndarray) -> np.ndarray:
        layer = np.zeros(patch_shape, np.float32)
        cv2.fillPoly(layer, [np.round((points - offset) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
        return layer

    cavity = fill(contour)
    colour = np.zeros((*patch_shape, 3), np.float32)
    colour[:] = np.array([62, 18, 22], np.float32)
    # A hint of tongue low in the opening.
    tongue_centre = (mesh[14] - down * 0.25 * gap - offset).astype(np.float32)
    tongue = np.zeros(patch_shape, np.float32)
    axes = (max(1, round(0.28 * eye)), max(1, round(0.3 * gap)))
    cv2.ellipse(tongue, (round(float(tongue_centre[0])), round(float(tongue_centre[1]))), axes,
                0.0, 180.0, 360.0, 1.0, -1, cv2.LINE_AA)  # fmt: skip
    tongue = cv2.GaussianBlur(tongue, (0, 0), max(0.5, 0.15 * gap)) * float(np.clip(parameters[JAW], 0, 1))
    colour += tongue[:, :, None] * (np.array([135, 55, 62], np.float32) - colour)
    # Teeth: an upper band under the upper lip, a narrower lower band over the lower lip.
    visibility = float(np.clip(parameters[TEETH], 0.0, 1.0))
    upper_lip = mesh[list(UPPER_INNER)].astype(np.float32)
    lower_lip = mesh[list(LOWER_INNER)].astype(np.float32)
    teeth_height = min(0.08 * eye, 0.35 * gap + 0.01 * eye)
    upper_teeth = fill(np.concatenate([upper_lip, (upper_lip + down * teeth_height)[::-1]]))
    lower_height = 0.25 * teeth_height * float(np.clip(parameters[JAW] - 0.3, 0, 1))
    lower_teeth = fill(np.concatenate([lower_lip, (lower_lip - down * lower_height)[::-1]]))
    # Teeth fade and darken towards the corners (they curve away into the mouth).
    columns = np.arange(x0, x1, dtype=np.float32)[None, :] - float(mesh[13][0] + mesh[14][0]) / 2
    mouth_half = max(float(np.linalg.norm(mesh[308] - mesh[78])) / 2, 1.0)
    centred = np.clip(1.0 - (columns / mouth_half) ** 2, 0.0, 1.0)
    teeth = np.clip(upper_teeth + lower_teeth * 0.6, 0.0, 1.0) * visibility * (0.35 + 0.65 * centred)
    # Teeth catch more light than the cavity: they dim with the square root of the face's light only.
    brightness = (0.55 + 0.45 * centred)[:, :, None] / np.sqrt(max(shade, 0.2))
    teeth_colour = np.array([232, 218, 190], np.float32) * brightness
    colour += teeth[:, :, None] * (teeth_colour - colour)
    alpha = cv2.GaussianBlur(cavity, (0, 0), 0.5) * cavity.max()
    alpha = np.clip(alpha, 0.0, 1.0)[:, :, None]
    region = frame[y0:y1, x0:x1].astype(np.float32)
    blended = region + alpha * (colour * shade - region)
    frame[y0:y1, x0:x1] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
