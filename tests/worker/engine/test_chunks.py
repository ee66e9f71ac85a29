"""Assembly in chunks: ranges of output frames encoded apart and joined without re-encoding give, losslessly,
the frames, timestamps and audio of one assembly."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import numpy as np
import pytest

from tests.media import decode_planes, write_audio, write_video
from tests.worker.engine.test_fanout import MovingBoxMasks, lossless_options
from worker.engine.audio_io import decode_for_models
from worker.engine.chunks import Chunk, encode_chunk, join_chunks, plan_chunks
from worker.engine.errors import EngineError
from worker.engine.fanout import JobPlan, SegmentPatch, assemble, plan_job, render_patch
from worker.engine.pipeline import DubOptions
from worker.engine.probe import probe_video
from worker.engine.renderers import create_renderer
from worker.engine.segments import Segment

WIDTH, HEIGHT = 66, 50


def _options() -> DubOptions:
    # The medium preset's B-frames make decode order differ from presentation order across the joins.
    return lossless_options("medium")


def _rendered(video: Path, audio: Path, work: Path, rotation: int = 0) -> tuple[JobPlan, dict[int, Path]]:
    """A planned dub of two shots and its segments' patches, as the segment tasks leave them."""
    options = _options()
    masks = MovingBoxMasks(HEIGHT, WIDTH) if rotation else MovingBoxMasks(WIDTH, HEIGHT)  # upright
    info = probe_video(video, options.limits)
    plan = plan_job(video, audio, options, work / "analysis.npz", mask_source=masks, source_cuts=[20])
    samples = decode_for_models(audio, work).samples
    renderer = create_renderer(options.renderer)
    patches = {}
    for index in plan.to_render:
        patch = render_patch(video, info, samples, plan.length, plan.segments[index], renderer, masks)
        patches[index] = work / f"{index}.npz"
        patch.save(patches[index])
    return plan, patches


def _loader(patches: dict[int, Path], asked: list[int]) -> object:
    def load(segment: Segment) -> SegmentPatch | None:
        asked.append(segment.index)
        return SegmentPatch.load(patches[segment.index]) if segment.index in patches else None

    return load


def _packets(path: Path) -> list[tuple[int | None, int | None, int]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            (packet.pts, packet.dts, packet.duration) for packet in container.demux(stream) if packet.size
        ]


def _audio(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(packet) for packet in container.demux(container.streams.audio[0]) if packet.size]


@pytest.mark.parametrize(
    "frame_times", [None, [index * 0.04 + 0.02 * (index % 7 == 3) for index in range(41)]]
)
@pytest.mark.parametrize("rotation", [0, 90])
def test_chunks_joined_are_one_assembly_frame_for_frame(
    tmp_path: Path, frame_times: list[float] | None, rotation: int
) -> None:
    video = write_video(
        tmp_path / "in.mp4", frames=41, width=WIDTH, height=HEIGHT, frame_times=frame_times, rotation=rotation
    )
    audio = write_audio(tmp_path / "dub.wav", 1.64)
    options = _options()
    plan, patches = _rendered(video, audio, tmp_path, rotation)
    asked: list[int] = []
    whole = assemble(video, audio, tmp_path / "whole.mp4", options, plan, _loader(patches, asked))  # type: ignore[arg-type]

    # Chunk bounds inside overlapping segments (13: segments 1 and 2 share it) and at the shot cut (20).
    chunks = [Chunk(0, 0, 13), Chunk(1, 13, 20), Chunk(2, 20, 29), Chunk(3, 29, 41)]
    pieces = []
    for chunk in reversed(chunks):  # any order, on any worker
        asked.clear()
        piece = tmp_path / f"chunk{chunk.index}.mp4"
        encode_chunk(video, piece, options, plan, chunk, _loader(patches, asked))  # type: ignore[arg-type]
        # Only the segments that reach into the chunk are loaded.
        assert asked == [s.index for s in plan.segments if s.end > chunk.start and s.start < chunk.end]
        pieces.append((chunk, piece))
        with av.open(str(piece)) as container:
            assert not container.streams.audio and container.streams.video[0].frames == chunk.frame_count
    files = {chunk: path for chunk, path in pieces}
    joined = join_chunks(
        chunks,
        files.__getitem__,
        video,
        audio,
        tmp_path / "joined.mp4",
        options,
        plan,
        whole.frames_rendered,
    )

    expected = decode_planes(tmp_path / "whole.mp4")
    frames = decode_planes(tmp_path / "joined.mp4")
    assert len(frames) == len(expected) == 41
    for frame, other in zip(frames, expected, strict=True):
        for plane, other_plane in zip(frame, other, strict=True):
            assert np.array_equal(plane, other_plane)
    # Same presentation times, durations, frame count, rotation; the same AAC packets, byte for byte.
    assert [pts for pts, _, _ in _packets(tmp_path / "joined.mp4")] == [
        pts for pts, _, _ in _packets(tmp_path / "whole.mp4")
    ]
    for fact in (
        "frame_count",
        "duration_s",
        "audio_duration_s",
        "rotation",
        "width",
        "height",
        "frame_rate",
    ):
        assert joined.output[fact] == whole.output[fact], fact
    assert joined.output["rotation"] == rotation
    assert _audio(tmp_path / "joined.mp4") == _audio(tmp_path / "whole.mp4")
    assert joined.frames_rendered == whole.frames_rendered > 0


def test_chunks_spread_evenly_and_move_to_a_shot_cut_nearby(tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.mp4", frames=41, width=WIDTH, height=HEIGHT)
    audio = write_audio(tmp_path / "dub.wav", 1.64)
    masks = MovingBoxMasks(WIDTH, HEIGHT)
    plan = plan_job(video, audio, _options(), tmp_path / "a.npz", mask_source=masks, source_cuts=[17])
    assert plan_chunks(plan, 0) == plan_chunks(plan, 41) == [Chunk(0, 0, 41)]
    # At most ~16 frames: bounds near 14 and 27; the cut at 17 is within a quarter chunk of 14, none of 27.
    assert plan_chunks(plan, 16) == [Chunk(0, 0, 17), Chunk(1, 17, 27), Chunk(2, 27, 41)]
    assert plan_chunks(plan, 24) == [Chunk(0, 0, 17), Chunk(1, 17, 41)]
    assert [chunk.end for chunk in plan_chunks(plan, 10)] == [8, 17, 25, 33, 41]
    for size in range(1, 45):
        chunks = plan_chunks(plan, size)
        assert chunks[0].start == 0 and chunks[-1].end == 41
        assert all(one.end == other.start for one, other in itertools.pairwise(chunks))
        assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
        assert max(chunk.frame_count for chunk in chunks) <= size + size // 4 + 1


def test_a_chunk_that_is_missing_frames_fails_the_join(tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.mp4", frames=41, width=WIDTH, height=HEIGHT)
    audio = write_audio(tmp_path / "dub.wav", 1.64)
    options = _options()
    plan, patches = _rendered(video, audio, tmp_path)
    asked: list[int] = []
    first, second = Chunk(0, 0, 20), Chunk(1, 20, 41)
    for chunk in (first, Chunk(1, 20, 40)):  # the second piece ends a frame short
        encode_chunk(video, tmp_path / f"{chunk.index}.mp4", options, plan, chunk, _loader(patches, asked))  # type: ignore[arg-type]
    files = {first: tmp_path / "0.mp4", second: tmp_path / "1.mp4"}
    with pytest.raises(EngineError) as failed:
        join_chunks([first, second], files.__getitem__, video, audio, tmp_path / "out.mp4", options, plan, 0)
    assert failed.value.code == "output_failed" and "holds 20 frames, not 21" in failed.value.message
    assert not (tmp_path / "out.mp4").exists()
