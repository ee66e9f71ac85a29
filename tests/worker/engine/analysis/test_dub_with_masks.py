"""Analysis masks through the real dub pipeline: a renderer changes the talker's lower face, nothing else."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from tests.worker.engine.analysis.conftest import Conversation
from tests.worker.engine.analysis.footage import mouth_point
from worker.engine.pipeline import DubOptions, dub
from worker.engine.renderers import SegmentInput, register_renderer


class _PaintWhite:
    """Returns white frames: every pixel the engine lets through shows where the mask allowed a change."""

    name = "paint-white-test"
    changes_pixels = True

    def render(self, segment: SegmentInput) -> np.ndarray:
        return np.full_like(segment.frames, 255)


def _luma(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="gray") for frame in container.decode(video=0)])


def test_only_masked_pixels_change(conversation: Conversation, tmp_path: Path) -> None:
    register_renderer(_PaintWhite.name, lambda _model: _PaintWhite())
    analysis = conversation.analysis
    output = tmp_path / "dubbed.mp4"
    report = dub(
        conversation.video,
        conversation.dub,
        output,
        DubOptions(renderer=_PaintWhite.name, lossless=True, preset="ultrafast"),
        mask_source=analysis,
        source_cuts=analysis.cuts,
    )
    dubbed = _luma(output)
    # The output may be longer than the source (the dub is); it shows the source frames the plan says.
    shown = report.plan.source_indices(0, report.plan.output_frames)
    source = _luma(conversation.video)[shown]
    assert dubbed.shape == source.shape
    masks = analysis.segment_masks(shown, output_start=0)
    assert masks is not None
    untouched = masks == 0
    assert np.array_equal(dubbed[untouched], source[untouched])
    # The talker's mouth is painted wherever the mask is full; the listener's face never is.
    full = masks > 0.99
    assert full.any() and dubbed[full].min() >= 230
    for frame, source_frame in enumerate(shown):
        x, y = (round(value) for value in mouth_point(conversation.listener[source_frame]))
        assert dubbed[frame, y, x] == source[frame, y, x]
    painted = 0
    for frame, source_frame in enumerate(shown):
        x, y = (round(value) for value in mouth_point(conversation.talker[source_frame]))
        if masks[frame, y, x] > 0.99:
            assert dubbed[frame, y, x] >= 230
            painted += 1
    assert painted > len(shown) // 2
