"""Behaviour that one-line mutants of the engine once broke unnoticed: feathered masks, the seam
cross-fade, the rounding of the dub audio's length to frames, and the colour arithmetic of compositing
(checked against the standards' own matrices, inverted here, not against the code's closed forms)."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.media import decode_planes, write_audio, write_video
from worker.engine.compositing import ColourSpace, blend, composite, from_upright, to_upright
from worker.engine.pipeline import DubOptions, dub
from worker.engine.renderers import SegmentInput, register_renderer
from worker.engine.timeline import OutputClock, SyncMode, plan_length
from worker.engine.video_io import Planes


def test_compositing_follows_the_feathered_mask() -> None:
    colours = ColourSpace(colorspace=1, color_range=1, height=64)  # BT.709, limited range
    planes = Planes(
        np.full((8, 8), 100, np.uint8), np.full((4, 4), 128, np.uint8), np.full((4, 4), 128, np.uint8)
    )
    white = np.full((8, 8, 3), 255, np.uint8)  # limited-range luma 235, neutral chroma
    alpha = np.zeros((8, 8), np.float32)
    alpha[2:6, 2:6] = 0.25
    alpha[4:6, 4:6] = 1.0
    out = composite(planes, white, alpha, colours)
    assert out.y[2, 2] == round(100 + 0.25 * (235 - 100))  # a quarter of the way: 134, not 235
    assert out.y[5, 5] == 235
    assert out.y[0, 0] == 100 and out.y[7, 7] == 100  # outside the mask, untouched
    assert np.array_equal(out.u, planes.u) and np.array_equal(out.v, planes.v)


class ShadeBySegmentRenderer:
    """Paints each segment one flat grey, dark or light by where it starts (segments here start 5 frames
    apart), so the two renderings of an overlap differ widely and the cross-fade can be measured."""

    name = "shade-by-segment"
    changes_pixels = True

    def render(self, segment: SegmentInput) -> np.ndarray:
        return np.full_like(segment.frames, 30 if segment.segment.start % 2 == 0 else 220)


register_renderer("shade-by-segment", lambda _model: ShadeBySegmentRenderer())


class WholeFrameMasks:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height

    def segment_masks(self, source_indices: np.ndarray, output_start: int) -> np.ndarray:
        return np.ones((len(source_indices), self.height, self.width), np.float32)


def test_segment_overlaps_cross_fade_from_the_earlier_rendering_to_the_later(tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.mp4", frames=29, width=32, height=32)
    audio = write_audio(tmp_path / "dub.wav", 1.16)
    options = DubOptions(
        renderer="shade-by-segment", preset="ultrafast", lossless=True, segment_frames=9, segment_overlap=4
    )
    report = dub(video, audio, tmp_path / "out.mp4", options, mask_source=WholeFrameMasks(32, 32))
    luma = [float(planes[0][16, 16]) for planes in decode_planes(tmp_path / "out.mp4")]
    segments = report.segments
    assert len(segments) >= 3
    checked = 0
    for earlier, later in itertools.pairwise(segments):
        overlap = earlier.end - later.start
        assert overlap > 1
        # What each rendering alone gives: the frames just outside the overlap, one from each segment.
        alone_earlier, alone_later = luma[later.start - 1], luma[earlier.end]
        assert abs(alone_later - alone_earlier) > 100
        for offset in range(overlap):
            share = (luma[later.start + offset] - alone_earlier) / (alone_later - alone_earlier)
            assert abs(share - (offset + 1) / (overlap + 1)) < 0.02, (later.start + offset, share)
            checked += 1
    assert checked >= 8


def test_audio_length_rounds_to_the_nearest_frame() -> None:
    rate = Fraction(25)
    clock = OutputClock(rate, Fraction(1, 12800))
    assert clock.frames_lasting(1.01) == 25  # 25.25 frames
    assert clock.frames_lasting(1.03) == 26  # 25.75 frames
    assert clock.frames_lasting(1.02) == 26  # 25.5: halves go up
    assert clock.frames_lasting(0.001) == 1  # never zero frames
    # The plan uses it: 1.01 s of dub audio over a 30-frame video is 25 frames, not 26.
    assert plan_length(SyncMode.CUT_OFF, 30, rate, 1.01).output_frames == 25
    assert plan_length(SyncMode.REMAP, 30, rate, 1.01).output_frames == 25


# (Kr, Kb) as BT.709, BT.601, SMPTE 240M and BT.2020 give them, by FFmpeg's colorspace tag.
STANDARD_LUMA = {
    1: (0.2126, 0.0722),
    5: (0.299, 0.114),
    6: (0.299, 0.114),
    7: (0.212, 0.087),
    9: (0.2627, 0.0593),
    10: (0.2627, 0.0593),
}
BT709, BT601 = STANDARD_LUMA[1], STANDARD_LUMA[5]
UNSPECIFIED = 2


def _rgb_to_ycbcr(kr: float, kb: float) -> np.ndarray:
    """The standards' definition: Y = Kr R + Kg G + Kb B, Cb = (B - Y) / 2(1 - Kb), Cr = (R - Y) / 2(1 - Kr)
    (R, G, B in [0, 1])."""
    kg = 1 - kr - kb
    return np.array(
        [
            [kr, kg, kb],
            [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
            [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
        ]
    )


def _scales(full_range: bool) -> tuple[float, float, float]:
    """Code value = offset + scale * normalised value: (luma offset, luma scale, chroma scale)."""
    return (0.0, 255.0, 255.0) if full_range else (16.0, 219.0, 224.0)


def _expected_rgb(
    y: np.ndarray, cb: np.ndarray, cr: np.ndarray, luma: tuple[float, float], full: bool
) -> np.ndarray:
    offset, luma_scale, chroma_scale = _scales(full)
    normalised = np.stack([(y - offset) / luma_scale, (cb - 128) / chroma_scale, (cr - 128) / chroma_scale])
    rgb = np.tensordot(np.linalg.inv(_rgb_to_ycbcr(*luma)), normalised, axes=1)  # (3, height, width)
    return np.clip(np.rint(np.moveaxis(rgb, 0, -1) * 255), 0, 255)


def _expected_ycbcr(rgb: np.ndarray, luma: tuple[float, float], full: bool) -> np.ndarray:
    offset, luma_scale, chroma_scale = _scales(full)
    y, cb, cr = np.tensordot(_rgb_to_ycbcr(*luma), np.moveaxis(rgb / 255, -1, 0), axes=1)
    return np.stack([offset + luma_scale * y, 128 + chroma_scale * cb, 128 + chroma_scale * cr])


def _assert_nearly_equal(got: np.ndarray, expected: np.ndarray) -> None:
    """Off by one only where float32 and float64 round a value that sits on a half differently."""
    difference = np.abs(got.astype(np.float64) - expected)
    assert difference.max() <= 1 and (difference > 0).mean() <= 0.01, (
        difference.max(),
        (difference > 0).mean(),
    )


def _random_planes(rng: np.random.Generator, height: int, width: int) -> Planes:
    chroma = ((height + 1) // 2, (width + 1) // 2)
    return Planes(
        rng.integers(0, 256, (height, width), dtype=np.uint8),
        rng.integers(0, 256, chroma, dtype=np.uint8),
        rng.integers(0, 256, chroma, dtype=np.uint8),
    )


def test_frames_convert_to_rgb_by_their_tagged_matrix_and_range() -> None:
    rng = np.random.default_rng(7)
    planes = _random_planes(rng, 33, 47)  # every code value, out-of-gamut ones too; odd sizes
    # Each pixel takes the chroma sample of its 2x2 block.
    rows, columns = np.indices(planes.y.shape) // 2
    cb, cr = planes.u[rows, columns].astype(np.float64), planes.v[rows, columns].astype(np.float64)
    cases = [(tag, 1, 480, "yuv420p", luma, False) for tag, luma in STANDARD_LUMA.items()]
    cases += [
        (1, 2, 480, "yuv420p", BT709, True),  # full range by tag
        (5, 1, 480, "yuvj420p", BT601, True),  # full range by pixel format
        (UNSPECIFIED, 1, 720, "yuv420p", BT709, False),  # untagged HD
        (UNSPECIFIED, 1, 719, "yuv420p", BT601, False),  # untagged SD
    ]
    for colorspace, color_range, height, pix_fmt, luma, full in cases:
        got = ColourSpace(colorspace, color_range, height, pix_fmt).to_rgb(planes)
        assert got.dtype == np.uint8 and got.shape == (33, 47, 3)
        _assert_nearly_equal(got, _expected_rgb(planes.y.astype(np.float64), cb, cr, luma, full))


def test_rgb_converts_to_unrounded_full_resolution_ycbcr() -> None:
    rgb = np.random.default_rng(8).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    cases = [(1, 1, BT709, False), (5, 2, BT601, True), (9, 1, STANDARD_LUMA[9], False)]
    for colorspace, color_range, luma, full in cases:
        got = np.stack(ColourSpace(colorspace, color_range, 480).to_yuv(rgb))
        assert np.allclose(got, _expected_ycbcr(rgb.astype(np.float64), luma, full), atol=1e-3)


def _block_means(full: np.ndarray) -> np.ndarray:
    """Mean of each 2x2 block; a block cut by an odd edge averages the pixels it has."""
    height, width = (full.shape[0] + 1) // 2, (full.shape[1] + 1) // 2
    return np.array(
        [
            [full[2 * row : 2 * row + 2, 2 * column : 2 * column + 2].mean() for column in range(width)]
            for row in range(height)
        ]
    )


def _fields(planes: Planes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return planes.y, planes.u, planes.v


def _mixed(source: np.ndarray, new: np.ndarray, weight: np.ndarray) -> np.ndarray:
    mixed = np.clip(np.rint(weight * new + (1 - weight) * source), 0, 255)
    return np.where(weight > 0, mixed, source)


@pytest.mark.parametrize(
    ("mask_rows", "mask_columns"),
    [
        (slice(3, 11), slice(5, 13)),  # from an odd row and column to the frame's odd-sized edges
        (slice(3, 9), slice(5, 11)),  # ending inside the frame on an even row and column
        (slice(1, 6), slice(5, 13)),  # a box of even height and odd width: 3 x 5 chroma blocks
    ],
)
def test_compositing_mixes_luma_per_pixel_and_chroma_per_block_and_keeps_the_rest(
    mask_rows: slice, mask_columns: slice
) -> None:
    rng = np.random.default_rng(9)
    planes = _random_planes(rng, 11, 13)
    rendered = rng.integers(0, 256, (11, 13, 3), dtype=np.uint8)
    alpha = np.zeros((11, 13), np.float64)  # feathered, with holes
    alpha[mask_rows, mask_columns] = rng.uniform(0.05, 1.0, alpha[mask_rows, mask_columns].shape)
    alpha[6, 7] = alpha[8, 10] = 0.0
    alpha[4, 6] = 1.0
    colours = ColourSpace(1, 1, 480)
    before = planes.copy()
    out = composite(planes, rendered, alpha.astype(np.float32), colours)

    new_y, new_cb, new_cr = _expected_ycbcr(rendered.astype(np.float64), BT709, False)
    _assert_nearly_equal(out.y, _mixed(planes.y.astype(np.float64), new_y, alpha))
    assert np.array_equal(out.y[alpha == 0], planes.y[alpha == 0])
    # Chroma blocks tile the mask's bounding box from the 2x2 grid line at or above its top-left corner; a
    # block cut by the box's bottom or right edge takes the pixels inside the box.
    box = (
        slice(mask_rows.start // 2 * 2, mask_rows.stop),
        slice(mask_columns.start // 2 * 2, mask_columns.stop),
    )
    chroma_weight = _block_means(alpha[box])
    chroma_box = tuple(
        slice(edge.start // 2, edge.start // 2 + size)
        for edge, size in zip(box, chroma_weight.shape, strict=True)
    )
    for got, source, new in ((out.u, planes.u, new_cb), (out.v, planes.v, new_cr)):
        expected = source.astype(np.float64)
        expected[chroma_box] = _mixed(expected[chroma_box], _block_means(new[box]), chroma_weight)
        _assert_nearly_equal(got, expected)
        assert np.count_nonzero(got != source) >= chroma_weight.size * 0.9  # and they did change
    assert all(
        np.array_equal(a, b) for a, b in zip(_fields(planes), _fields(before), strict=True)
    )  # not in place

    assert composite(planes, rendered, np.zeros((11, 13), np.float32), colours) is planes


def test_saturated_full_range_colours_composite_to_the_8_bit_extremes() -> None:
    # BT.709 full range: blue has Cb +0.5 (code 255.5 before clipping), yellow -0.5 (code 0.5), red and cyan
    # the same in Cr; they land on 255 and 0 exactly.
    colours = ColourSpace(1, 2, 480)  # BT.709, full range
    gray = np.full((2, 12), 128, np.uint8)
    planes = Planes(gray, gray[:1, :6].copy(), gray[:1, :6].copy())
    blocks = [(0, 0, 255), (255, 255, 0), (255, 0, 0), (0, 255, 255), (0, 0, 0), (255, 255, 255)]
    rendered = np.repeat(np.array(blocks, np.uint8)[None, :, None, :], 2, axis=2).reshape(1, 12, 3)
    out = composite(planes, np.repeat(rendered, 2, axis=0), np.ones((2, 12), np.float32), colours)
    assert out.u[0].tolist() == [255, 0, 99, 157, 128, 128]
    assert out.v[0].tolist() == [116, 140, 255, 0, 128, 128]
    assert out.y[0, ::2].tolist() == [18, 237, 54, 201, 0, 255]


def test_blend_cross_fades_in_256_steps_rounding_to_nearest() -> None:
    rng = np.random.default_rng(10)
    earlier, later = _random_planes(rng, 256, 256), _random_planes(rng, 256, 256)
    # Luma: every pair of code values, so every rounding case (a half included) occurs.
    earlier.y, later.y = np.indices((256, 256), dtype=np.uint8)
    for weight in (1 / 256, 0.1, 0.25, 0.5, 0.6, 0.9, 255 / 256):
        step = round(weight * 256)
        out = blend(earlier, later, weight)
        for got, a, b in (
            (out.y, earlier.y, later.y),
            (out.u, earlier.u, later.u),
            (out.v, earlier.v, later.v),
        ):
            exact = (a.astype(np.int64) * (256 - step) + b.astype(np.int64) * step) / 256
            assert got.dtype == np.uint8
            assert np.array_equal(got, np.floor(exact + 0.5)), weight  # halves round up
    assert blend(earlier, later, 0.001) is earlier and blend(earlier, later, 0.0) is earlier
    assert blend(earlier, later, 0.999) is later and blend(earlier, later, 1.0) is later
    same = blend(earlier, earlier, 0.37)
    assert np.array_equal(same.y, earlier.y) and np.array_equal(same.u, earlier.u)


def test_rotation_turns_counter_clockwise_and_back() -> None:
    image = np.array([[1, 2, 3], [4, 5, 6]])
    assert np.array_equal(to_upright(image, 90), [[3, 6], [2, 5], [1, 4]])
    assert np.array_equal(to_upright(image, 180), [[6, 5, 4], [3, 2, 1]])
    assert np.array_equal(to_upright(image, 270), [[4, 1], [5, 2], [6, 3]])
    assert to_upright(image, 0) is image and from_upright(image, 0) is image
    for rotation in (90, 180, 270):
        assert np.array_equal(from_upright(to_upright(image, rotation), rotation), image)
