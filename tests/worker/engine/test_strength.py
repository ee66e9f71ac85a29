"""Behaviour that one-line mutants of the engine once broke unnoticed: feathered masks, the seam
cross-fade and the rounding of the dub audio's length to frames."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import numpy as np

from tests.media import decode_planes, write_audio, write_video
from worker.engine.compositing import ColourSpace, composite
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
