"""Colour conversion for renderers, compositing of their output, and blending of segment overlaps.

Pixels are only ever changed where a mask is above zero: the arithmetic is arranged so that a weight of zero
(or two equal inputs, in overlap blending) reproduces the source value bit for bit.
"""

from __future__ import annotations

import numpy as np

from worker.engine.video_io import Planes

# Luma coefficients (Kr, Kb) by FFmpeg's AVColorSpace value.
_BT601 = (0.299, 0.114)
_BT709 = (0.2126, 0.0722)
_BT2020 = (0.2627, 0.0593)
_MATRICES = {1: _BT709, 5: _BT601, 6: _BT601, 7: (0.212, 0.087), 9: _BT2020, 10: _BT2020}
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG


class ColourSpace:
    """YUV <-> RGB for one video's matrix and range; untagged video follows the usual SD/HD convention."""

    def __init__(self, colorspace: int, color_range: int, height: int, pix_fmt: str = "yuv420p") -> None:
        default = _BT709 if height >= 720 else _BT601
        self.kr, self.kb = _MATRICES.get(colorspace, default)
        self.full_range = color_range == _FULL_RANGE or pix_fmt == "yuvj420p"

    def to_rgb(self, planes: Planes) -> np.ndarray:
        """(height, width, 3) uint8 RGB of a frame."""
        height, width = planes.y.shape
        y, cb, cr = self._normalised(
            planes.y, _upsample(planes.u, height, width), _upsample(planes.v, height, width)
        )
        kr, kb = self.kr, self.kb
        red = y + 2 * (1 - kr) * cr
        blue = y + 2 * (1 - kb) * cb
        green = (y - kr * red - kb * blue) / (1 - kr - kb)
        rgb = np.stack([red, green, blue], axis=-1)
        return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)

    def to_yuv(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Float Y, Cb, Cr code values at full resolution (no rounding, no subsampling)."""
        red, green, blue = (rgb[..., channel].astype(np.float32) / 255 for channel in range(3))
        kr, kb = self.kr, self.kb
        y = kr * red + (1 - kr - kb) * green + kb * blue
        cb = (blue - y) / (2 * (1 - kb))
        cr = (red - y) / (2 * (1 - kr))
        if self.full_range:
            return y * 255, cb * 255 + 128, cr * 255 + 128
        return y * 219 + 16, cb * 224 + 128, cr * 224 + 128

    def _normalised(
        self, y: np.ndarray, u: np.ndarray, v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y, u, v = (plane.astype(np.float32) for plane in (y, u, v))
        if self.full_range:
            return y / 255, (u - 128) / 255, (v - 128) / 255
        return (y - 16) / 219, (u - 128) / 224, (v - 128) / 224


def composite(planes: Planes, rendered: np.ndarray, alpha: np.ndarray, colours: ColourSpace) -> Planes:
    """Blend `rendered` RGB over the frame where `alpha` (height, width) > 0; elsewhere keep it exactly."""
    rows, columns = np.nonzero(alpha > 0)
    if rows.size == 0:
        return planes
    # Work on the mask's bounding box only, aligned to the 2x2 chroma grid.
    top, left = rows.min() // 2 * 2, columns.min() // 2 * 2
    bottom, right = rows.max() + 1, columns.max() + 1
    out = planes.copy()
    weight = alpha[top:bottom, left:right].astype(np.float32)
    new_y, new_u, new_v = colours.to_yuv(rendered[top:bottom, left:right])
    luma = out.y[top:bottom, left:right]
    luma[...] = _mix(luma, new_y, weight)
    chroma_weight = _downsample(weight)
    chroma_box = (
        slice(top // 2, top // 2 + chroma_weight.shape[0]),
        slice(left // 2, left // 2 + chroma_weight.shape[1]),
    )
    for plane, new in ((out.u, new_u), (out.v, new_v)):
        region = plane[chroma_box]
        region[...] = _mix(region, _downsample(new), chroma_weight)
    return out


def blend(earlier: Planes, later: Planes, weight: float) -> Planes:
    """Cross-fade two renderings of the same frame; equal pixels stay exactly equal."""
    step = round(weight * 256)
    if step <= 0:
        return earlier
    if step >= 256:
        return later

    def mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        total = a.astype(np.uint32) * (256 - step) + b.astype(np.uint32) * step + 128
        return (total >> 8).astype(np.uint8)

    return Planes(mix(earlier.y, later.y), mix(earlier.u, later.u), mix(earlier.v, later.v))


def to_upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """A coded frame (height, width, ...) turned as a viewer sees it (`rotation`: counter-clockwise)."""
    return np.rot90(image, k=rotation // 90) if rotation else image


def from_upright(image: np.ndarray, rotation: int) -> np.ndarray:
    return np.rot90(image, k=-(rotation // 90)) if rotation else image


def _mix(source: np.ndarray, new: np.ndarray, weight: np.ndarray) -> np.ndarray:
    mixed = weight * new + (1 - weight) * source.astype(np.float32)
    return np.where(weight > 0, np.clip(np.rint(mixed), 0, 255), source).astype(np.uint8)


def _upsample(chroma: np.ndarray, height: int, width: int) -> np.ndarray:
    return chroma.repeat(2, axis=0).repeat(2, axis=1)[:height, :width]


def _downsample(full: np.ndarray) -> np.ndarray:
    """Mean over 2x2 blocks (odd edges padded by repetition): the 4:2:0 chroma grid."""
    padded = np.pad(full, ((0, full.shape[0] % 2), (0, full.shape[1] % 2)), mode="edge")
    height, width = padded.shape[0] // 2, padded.shape[1] // 2
    return padded.reshape(height, 2, width, 2).mean(axis=(1, 3))
