"""Plan once, render segments anywhere in any order, assemble once: the frames are `dub()`'s."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from tests.media import decode_planes, write_audio, write_video
from worker.engine.audio_io import decode_for_models
from worker.engine.fanout import JobPlan, SegmentPatch, assemble, plan_job, render_patch
from worker.engine.pipeline import DubOptions, dub
from worker.engine.probe import probe_video
from worker.engine.renderers import SegmentInput, create_renderer, register_renderer
from worker.engine.segments import Segment


class SegmentShadeRenderer:
    """Changes every pixel, differently in each segment: overlaps must be blended as `dub()` blends them."""

    name = "segment-shade"
    changes_pixels = True

    def render(self, segment: SegmentInput) -> np.ndarray:
        return (segment.frames // 2 + 40 * (segment.segment.index % 3)).astype(np.uint8)


register_renderer(SegmentShadeRenderer.name, lambda _model: SegmentShadeRenderer())


class MovingBoxMasks:
    """A box that drifts one pixel per source frame and is off for source frames 12 to 15."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height

    def segment_masks(self, source_indices: np.ndarray, output_start: int) -> np.ndarray:
        masks = np.zeros((len(source_indices), self.height, self.width), np.float32)
        for position, source in enumerate(source_indices.tolist()):
            if not 12 <= source < 16:
                left = 3 + source % 20
                masks[position, 5:29, left : left + 21] = 0.75
        return masks


def lossless_options(preset: str = "ultrafast") -> DubOptions:
    return DubOptions(
        renderer=SegmentShadeRenderer.name,
        lossless=True,
        preset=preset,
        segment_frames=9,
        segment_overlap=2,
    )


def _fan_out(video: Path, audio: Path, work: Path, order_seed: int) -> tuple[JobPlan, Path]:
    """What the tasks do, in-process: the plan through JSON, segments in a shuffled order through files."""
    options = lossless_options()
    masks = MovingBoxMasks(66, 50)
    info = probe_video(video, options.limits)
    planned = plan_job(video, audio, options, work / "analysis.npz", mask_source=masks, source_cuts=[20])
    plan = JobPlan.from_json(json.loads(json.dumps(planned.to_json())), info)
    samples = decode_for_models(audio, work).samples
    renderer = create_renderer(options.renderer)
    order = list(plan.to_render)
    random.Random(order_seed).shuffle(order)
    for index in order:
        patch = render_patch(video, info, samples, plan.length, plan.segments[index], renderer, masks)
        patch.save(work / f"{index}.npz")

    def load(segment: Segment) -> SegmentPatch | None:
        path = work / f"{segment.index}.npz"
        return SegmentPatch.load(path) if path.exists() else None

    output = work / "out.mp4"
    report = assemble(video, audio, output, options, plan, load)
    assert report.frames_rendered == sum(plan.segments[index].frame_count for index in plan.to_render)
    return plan, output


def test_fanned_out_segments_assemble_to_the_frames_of_one_process(tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.mp4", frames=41, width=66, height=50)
    audio = write_audio(tmp_path / "dub.wav", 1.64)
    single = dub(
        video,
        audio,
        tmp_path / "single.mp4",
        lossless_options(),
        mask_source=MovingBoxMasks(66, 50),
        source_cuts=[20],
    )
    outputs = []
    for seed in (1, 2):
        work = tmp_path / f"fan-{seed}"
        work.mkdir()
        plan, output = _fan_out(video, audio, work, seed)
        outputs.append(output)
    # Two shots of several overlapping segments each.
    assert len(plan.segments) > 4 and {segment.shot for segment in plan.segments} == {0, 1}
    assert [segment.index for segment in single.segments] == [segment.index for segment in plan.segments]
    expected = decode_planes(tmp_path / "single.mp4")
    assert len(expected) == 41
    for output in outputs:
        frames = decode_planes(output)
        assert len(frames) == len(expected)
        for one, other in zip(frames, expected, strict=True):
            for plane_one, plane_other in zip(one, other, strict=True):
                assert np.array_equal(plane_one, plane_other)


def test_a_patch_holds_only_the_changed_box_and_its_bytes_depend_on_the_frames_alone(tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.mp4", frames=9, width=66, height=50)
    audio = write_audio(tmp_path / "dub.wav", 0.36)
    options = lossless_options()
    info = probe_video(video, options.limits)
    samples = decode_for_models(audio, tmp_path).samples
    plan = plan_job(video, audio, options, tmp_path / "analysis.npz", mask_source=MovingBoxMasks(66, 50))
    segment = plan.segments[0]
    renderer = create_renderer(options.renderer)
    first = render_patch(video, info, samples, plan.length, segment, renderer, MovingBoxMasks(66, 50))
    again = render_patch(video, info, samples, plan.length, segment, renderer, MovingBoxMasks(66, 50))
    first.save(tmp_path / "first.npz")
    again.save(tmp_path / "again.npz")
    assert (tmp_path / "first.npz").read_bytes() == (tmp_path / "again.npz").read_bytes()
    loaded = SegmentPatch.load(tmp_path / "first.npz")
    assert loaded.segment == segment and loaded.rendered
    for patch in loaded.frames:
        assert patch is not None
        # The 21x24 mask (rows 5-28) on the 2x2 chroma grid: rows 4-29, 22 columns; not the 66x50 frame.
        assert patch.y.shape == (26, 22) and patch.u.shape == patch.v.shape == (13, 11)


def test_planning_knows_by_name_whether_a_renderer_changes_pixels() -> None:
    from worker.engine.errors import EngineError
    from worker.engine.renderers import renderer_changes_pixels

    assert renderer_changes_pixels("passthrough") is False
    assert renderer_changes_pixels("dit") is True  # without loading its weights
    assert renderer_changes_pixels(SegmentShadeRenderer.name) is True
    with pytest.raises(EngineError) as refused:
        renderer_changes_pixels("no-such-renderer")
    assert refused.value.code == "invalid_option"
