from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.media import FeatheredBox, decode_planes, luma_weights, write_audio, write_gif, write_video
from worker.engine.compositing import ColourSpace
from worker.engine.errors import EngineError
from worker.engine.pipeline import DubOptions, dub
from worker.engine.probe import probe_video
from worker.engine.renderers import SegmentInput, register_renderer
from worker.engine.timeline import SyncMode, plan_length

FAST = {"preset": "ultrafast", "segment_frames": 9, "segment_overlap": 2}


def options(**changes: object) -> DubOptions:
    return DubOptions(**{**FAST, "lossless": True, **changes})  # type: ignore[arg-type]


class InvertRenderer:
    """A real renderer that visibly changes every pixel it is given: its inverse."""

    name = "invert"
    changes_pixels = True

    def render(self, segment: SegmentInput) -> np.ndarray:
        return 255 - segment.frames


register_renderer("invert", lambda _model: InvertRenderer())

COLOUR = (200, 60, 120)


class ConstantRenderer:
    """Paints every pixel one colour: what the output shows of it is exactly the weight it was given."""

    name = "constant"
    changes_pixels = True

    def render(self, segment: SegmentInput) -> np.ndarray:
        return np.broadcast_to(np.array(COLOUR, np.uint8), segment.frames.shape).copy()


register_renderer("constant", lambda _model: ConstantRenderer())


class BoxMasks:
    """Masks a fixed box of the upright frame (what face analysis will provide)."""

    def __init__(self, width: int, height: int, box: tuple[int, int, int, int]) -> None:
        self.width, self.height, self.box = width, height, box
        self.calls: list[tuple[int, int]] = []

    def segment_masks(self, source_indices: np.ndarray, output_start: int) -> np.ndarray:
        self.calls.append((output_start, len(source_indices)))
        masks = np.zeros((len(source_indices), self.height, self.width), np.float32)
        left, top, right, bottom = self.box
        masks[:, top:bottom, left:right] = 1.0
        return masks


def test_passthrough_keeps_every_decoded_pixel(tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.mp4", frames=40, audio_seconds=1.6)
    audio = write_audio(tmp_path / "dub.wav", 1.0)
    report = dub(video, audio, tmp_path / "out.mp4", options())
    source, output = decode_planes(video), decode_planes(tmp_path / "out.mp4")
    assert report.plan.mode is SyncMode.SILENCE
    assert len(output) == len(source) == 40 == report.output["frame_count"]
    for before, after in zip(source, output, strict=True):
        for plane_before, plane_after in zip(before, after, strict=True):
            assert np.array_equal(plane_before, plane_after)
    assert len(report.segments) > 3  # the short segments above really split the clip


@pytest.mark.parametrize("mode", ["cut_off", "loop", "bounce", "silence", "remap", "auto"])
@pytest.mark.parametrize("audio_seconds", [0.7, 2.3])
def test_sync_modes_give_the_planned_frames_in_the_planned_order(
    tmp_path: Path, mode: str, audio_seconds: float
) -> None:
    video = write_video(tmp_path / "in.mp4", frames=30)
    audio = write_audio(tmp_path / "dub.wav", audio_seconds)
    report = dub(video, audio, tmp_path / "out.mp4", options(sync_mode=mode))
    plan = plan_length(SyncMode(mode), 30, Fraction(25), audio_seconds)
    source, output = decode_planes(video), decode_planes(tmp_path / "out.mp4")
    assert len(output) == plan.output_frames == report.output["frame_count"]
    for position, index in enumerate(plan.source_indices(0, plan.output_frames)):
        assert np.array_equal(output[position][0], source[index][0]), f"frame {position}"
    # Audio and video last as long as each other, to within one frame.
    assert abs(report.output["audio_duration_s"] - report.output["duration_s"]) <= 1 / 25 + 1e-6


GIF_AT_25_FPS = [4] * 120  # 120 frames, 4/100 s each
GIF_HOLDING_ITS_FIRST_PICTURE = [24] + [4] * 119  # as many GIFs do: 120 frames over 5.0 s
GIF_HOLDING_ITS_LAST_PICTURE = [4] * 119 + [24]
GIF_SPEEDING_UP = [4] * 60 + [2] * 60


@pytest.mark.parametrize(
    "delays",
    [GIF_AT_25_FPS, GIF_HOLDING_ITS_FIRST_PICTURE, GIF_HOLDING_ITS_LAST_PICTURE, GIF_SPEEDING_UP],
    ids=["steady", "first_held", "last_held", "speeding_up"],
)
@pytest.mark.parametrize("mode", ["auto", "silence", "cut_off", "loop"])
def test_the_output_lasts_what_the_plan_says_for_animated_gifs(
    tmp_path: Path, delays: list[int], mode: str
) -> None:
    """An animated GIF keeps its own frame times: frames, duration, rate and audio follow the plan exactly."""
    video = write_gif(tmp_path / "in.gif", delays)
    audio = write_audio(tmp_path / "dub.wav", 7.67 if mode != "cut_off" else 3.33)
    report = dub(video, audio, tmp_path / "out.mp4", options(sync_mode=mode, lossless=False))
    plan, output = report.plan, report.output
    assert output["frame_count"] == plan.output_frames
    assert output["duration_s"] == pytest.approx(plan.output_seconds, abs=1e-6)
    assert output["frame_rate"] == pytest.approx(plan.output_frame_rate, rel=1e-6)
    assert output["audio_duration_s"] == pytest.approx(plan.output_seconds, abs=1e-3)
    # The plan itself keeps the dub audio: it ends within half a frame of it, or the video's own length.
    if plan.mode is not SyncMode.SILENCE:
        assert abs(plan.output_seconds - plan.audio_seconds) <= 0.02 + 1e-9
    else:
        assert plan.output_seconds == pytest.approx(sum(delays) / 100)


@pytest.mark.parametrize("gop", ["keyint=7:bframes=3", "keyint=250:bframes=0"])
def test_bounce_and_loop_read_frames_exactly_across_keyframes(tmp_path: Path, gop: str) -> None:
    """Playing backwards seeks to keyframes and decodes forward: every frame must still be the right one."""
    video = write_video(tmp_path / "in.mp4", frames=45, options={"x264-params": gop})
    audio = write_audio(tmp_path / "dub.wav", 5.0)
    source = decode_planes(video)
    for mode in ("bounce", "loop"):
        report = dub(video, audio, tmp_path / f"{mode}.mp4", options(sync_mode=mode))
        output = decode_planes(tmp_path / f"{mode}.mp4")
        indices = report.plan.source_indices(0, report.plan.output_frames)
        assert len(output) == 125
        for position, index in enumerate(indices):
            assert np.array_equal(output[position][0], source[index][0]), f"{mode} frame {position}"


def test_renderer_changes_only_the_masked_region(tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.mp4", frames=25, width=96, height=64)
    audio = write_audio(tmp_path / "dub.wav", 1.0)
    masks = BoxMasks(96, 64, (30, 20, 62, 52))
    report = dub(
        video, audio, tmp_path / "out.mp4", options(renderer="invert", sync_mode="cut_off"), mask_source=masks
    )
    assert report.frames_rendered >= 25
    source, output = decode_planes(video), decode_planes(tmp_path / "out.mp4")
    assert len(output) == 25
    outside = np.ones((64, 96), bool)
    outside[20:52, 30:62] = False
    outside_chroma = np.ones((32, 48), bool)
    outside_chroma[10:26, 15:31] = False
    for before, after in zip(source, output, strict=True):
        assert np.array_equal(before[0][outside], after[0][outside])
        assert np.array_equal(before[1][outside_chroma], after[1][outside_chroma])
        assert np.array_equal(before[2][outside_chroma], after[2][outside_chroma])
        # Inverting RGB inverts limited-range luma around its mid-point: Y' = 251 - Y (chroma rounding aside).
        inside = before[0][20:52, 30:62].astype(int) + after[0][20:52, 30:62]
        assert np.abs(inside - 251).mean() < 4
    # Every segment asked for masks once, in order, covering the timeline.
    assert [start for start, _ in masks.calls] == [segment.start for segment in report.segments]


def test_a_feathered_mask_weighs_the_rendering_by_the_mask_once(tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.mp4", frames=13, width=96, height=64)
    audio = write_audio(tmp_path / "dub.wav", 0.52)
    masks = FeatheredBox(96, 64, (12, 56, 24, 80), band=8)
    dub(
        video,
        audio,
        tmp_path / "out.mp4",
        options(renderer="constant", sync_mode="cut_off"),
        mask_source=masks,
    )
    info = probe_video(video)
    colours = ColourSpace(info.colorspace, info.color_range, info.height, info.pix_fmt)
    colour_luma = float(colours.to_yuv(np.array([[COLOUR]], np.uint8))[0][0, 0])
    source, output = decode_planes(video), decode_planes(tmp_path / "out.mp4")
    expected, ratios = luma_weights(source, output, colour_luma, masks.mask)
    lumas = np.stack([planes[0] for planes in output])
    assert np.abs(lumas - expected).max() <= 1  # rounding only
    assert ratios.size > 1000
    assert abs(float(ratios.mean()) - 1) < 0.02


def test_overlapping_segments_blend_without_seams(tmp_path: Path) -> None:
    """Rendered in many overlapping segments or in one, a deterministic renderer gives the same video."""
    video = write_video(tmp_path / "in.mp4", frames=29, width=64, height=64)
    audio = write_audio(tmp_path / "dub.wav", 1.16)
    masks = BoxMasks(64, 64, (8, 8, 56, 56))
    chunked = dub(video, audio, tmp_path / "chunked.mp4", options(renderer="invert"), mask_source=masks)
    whole = dub(
        video, audio, tmp_path / "whole.mp4", options(renderer="invert", segment_frames=29), mask_source=masks
    )
    assert len(chunked.segments) > 3 and len(whole.segments) == 1
    for one, other in zip(
        decode_planes(tmp_path / "chunked.mp4"), decode_planes(tmp_path / "whole.mp4"), strict=True
    ):
        for plane_one, plane_other in zip(one, other, strict=True):
            assert np.array_equal(plane_one, plane_other)


def test_rotation_timestamps_and_colour_tags_are_kept(tmp_path: Path) -> None:
    times = [0.0, 0.04, 0.08, 0.2, 0.24, 0.5, 0.54, 0.58, 0.62, 0.9, 0.94, 0.98]
    video = write_video(tmp_path / "in.mkv", frames=len(times), frame_times=times, rotation=270)
    audio = write_audio(tmp_path / "dub.wav", 0.5)
    report = dub(video, audio, tmp_path / "out.mp4", options(sync_mode="silence"))
    assert report.output["rotation"] == 270
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.video[0]
        stamps = sorted(
            round(float(packet.pts * stream.time_base), 3)
            for packet in container.demux(stream)
            if packet.size
        )
    assert stamps == times


def test_colour_tags_survive(tmp_path: Path) -> None:
    video = tmp_path / "in.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        context = stream.codec_context
        context.color_primaries, context.color_trc, context.colorspace, context.color_range = 1, 1, 1, 1
        for index in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), index * 40, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    dub(video, write_audio(tmp_path / "dub.wav", 0.2), tmp_path / "out.mp4", options())
    with av.open(str(tmp_path / "out.mp4")) as container:
        frame = next(container.decode(video=0))
    assert (frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range) == (1, 1, 1, 1)


def test_odd_sizes_are_padded_to_even_for_h264(tmp_path: Path) -> None:
    video = write_video(tmp_path / "odd.mkv", codec="ffv1", width=97, height=63, frames=9)
    report = dub(video, write_audio(tmp_path / "dub.wav", 0.3), tmp_path / "out.mp4", options())
    assert (report.output["width"], report.output["height"]) == (98, 64)
    source, output = decode_planes(video), decode_planes(tmp_path / "out.mp4")
    assert np.array_equal(output[0][0][:63, :97], source[0][0])


@pytest.mark.parametrize(
    ("name", "codec"),
    [("in.webm", "libvpx-vp9"), ("in.avi", "mpeg4"), ("in.mkv", "libx265"), ("in.mov", "libx264")],
)
def test_other_containers_dub_to_mp4(tmp_path: Path, name: str, codec: str) -> None:
    video = write_video(tmp_path / name, codec=codec, frames=20)
    report = dub(
        video,
        write_audio(tmp_path / "dub.mp3", 1.0, codec="libmp3lame", rate=44100),
        tmp_path / "o.mp4",
        options(lossless=False),
    )
    assert report.output["frame_count"] == 25  # auto: bounce to the audio's 1 s
    assert report.output["video_codec"] == "h264" and report.output["pix_fmt"] == "yuv420p"
    assert report.output["audio_codec"] == "aac"


def test_audio_starts_with_the_video(tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.mp4", frames=50)
    audio = write_audio(tmp_path / "dub.wav", 2.0, rate=48000)
    dub(video, audio, tmp_path / "out.mp4", options())
    with av.open(str(audio)) as container:
        reference = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(audio=0)])
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.audio[0]
        decoded = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(stream)])
    window = reference[4800:19200]
    lags = range(-480, 481, 4)
    scores = [float(np.dot(window, decoded[4800 + lag : 19200 + lag])) for lag in lags]
    best = lags[int(np.argmax(scores))]
    assert abs(best) <= 48  # within 1 ms at 48 kHz


def test_cancellation_stops_between_segments_and_leaves_no_file(tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.mp4", frames=40)
    audio = write_audio(tmp_path / "dub.wav", 1.6)
    checks: list[int] = []

    def should_cancel() -> bool:
        checks.append(1)
        return len(checks) > 2

    with pytest.raises(EngineError) as raised:
        dub(video, audio, tmp_path / "out.mp4", options(), should_cancel=should_cancel)
    assert raised.value.code == "canceled"
    assert list(tmp_path.glob("*out.mp4*")) == []


def test_bad_inputs_fail_before_any_output(tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.mp4", frames=10)
    with pytest.raises(EngineError) as raised:
        dub(video, video, tmp_path / "out.mp4", options())
    assert raised.value.code == "no_audio_stream"
    with pytest.raises(EngineError) as raised:
        dub(video, write_audio(tmp_path / "a.wav", 1.0), tmp_path / "out.mp4", options(renderer="magic"))
    assert raised.value.code == "invalid_option"
    assert not (tmp_path / "out.mp4").exists()


def test_a_pixel_changing_renderer_gets_masks_from_scene_analysis(tmp_path: Path) -> None:
    """Without a mask source, dub() analyses the video: only the speaker's lower face may change."""
    samples = Path(__file__).parents[3] / "samples"
    report = dub(
        samples / "speaker.mp4",
        samples / "dub_speech.m4a",
        tmp_path / "out.mp4",
        options(renderer="invert", segment_frames=41, segment_overlap=4),
    )
    assert report.analysis is not None and report.analysis["speakers_dubbed"] == 1
    assert report.frames_rendered > 0
    source = decode_planes(samples / "speaker.mp4")
    output = decode_planes(tmp_path / "out.mp4")
    indices = report.plan.source_indices(0, report.plan.output_frames)
    changed = np.zeros(source[0][0].shape, bool)
    for position, index in enumerate(indices):
        changed |= output[position][0] != source[index][0]
    rows, columns = np.nonzero(changed)
    # The astronaut's mouth is near (165, 110) in the 384x384 sample; everything changed lies around it.
    assert changed.mean() < 0.1
    assert 80 < rows.mean() < 200 and 100 < columns.mean() < 230
