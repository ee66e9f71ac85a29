"""Piecewise-affine image warp over a fixed triangulation (the face mesh plus a ring of fixed points).

Each output pixel inside a moved triangle samples the source at the same barycentric position in the
triangle's original place; pixels outside every triangle, and triangles that did not move, keep their
values exactly (the map there is the identity on whole pixels, which bilinear sampling reproduces).
"""

from __future__ import annotations

import cv2
import numpy as np


def triangle_affines(moved: np.ndarray, original: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(n, 2, 3) maps from each moved triangle's points to the original's (degenerate ones: translations)."""
    moved_tri = moved[triangles]  # (n, 3, 2)
    original_tri = original[triangles]
    system = np.concatenate([moved_tri, np.ones((len(triangles), 3, 1))], axis=2)  # (n, 3, 3)
    determinant = np.linalg.det(system)
    usable = np.abs(determinant) > 1e-6
    solution = np.zeros((len(triangles), 3, 2))
    solution[:, 0, 0] = solution[:, 1, 1] = 1.0
    solution[:, 2] = original_tri.mean(axis=1) - moved_tri.mean(axis=1)
    if usable.any():
        solution[usable] = np.linalg.solve(system[usable], original_tri[usable])
    return np.transpose(solution, (0, 2, 1))  # x' = A[:, :, :2] @ (x, y) + A[:, :, 2]


def warp_region(image: np.ndarray, original: np.ndarray, moved: np.ndarray, triangles: np.ndarray) -> None:
    """Warp `image` in place so content at `original` points appears at `moved` points (float32 (n, 2))."""
    height, width = image.shape[:2]
    x0 = max(0, int(np.floor(min(original[:, 0].min(), moved[:, 0].min()))) - 1)
    y0 = max(0, int(np.floor(min(original[:, 1].min(), moved[:, 1].min()))) - 1)
    x1 = min(width, int(np.ceil(max(original[:, 0].max(), moved[:, 0].max()))) + 2)
    y1 = min(height, int(np.ceil(max(original[:, 1].max(), moved[:, 1].max()))) + 2)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    changed = np.abs(moved - original).max(axis=1) > 1e-3
    active = changed[triangles].any(axis=1)
    if not active.any():
        return
    ids = np.full((y1 - y0, x1 - x0), -1, dtype=np.int32)
    shifted = np.round((moved - [x0, y0]) * 16).astype(np.int32)
    for index in np.flatnonzero(active):
        cv2.fillConvexPoly(ids, shifted[triangles[index]], int(index), lineType=cv2.LINE_8, shift=4)
    rows, columns = np.nonzero(ids >= 0)
    if len(rows) == 0:
        return
    affines = triangle_affines(moved, original, triangles).astype(np.float32)
    chosen = affines[ids[rows, columns]]  # (m, 2, 3)
    xs = (columns + x0).astype(np.float32)
    ys = (rows + y0).astype(np.float32)
    map_x = np.tile(np.arange(x0, x1, dtype=np.float32), (y1 - y0, 1))
    map_y = np.tile(np.arange(y0, y1, dtype=np.float32)[:, None], (1, x1 - x0))
    map_x[rows, columns] = chosen[:, 0, 0] * xs + chosen[:, 0, 1] * ys + chosen[:, 0, 2]
    map_y[rows, columns] = chosen[:, 1, 0] * xs + chosen[:, 1, 1] * ys + chosen[:, 1, 2]
    patch = cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # Only pixels inside a moved triangle change; everything else keeps its exact value.
    inside = ids >= 0
    region = image[y0:y1, x0:x1]
    region[inside] = patch[inside]
