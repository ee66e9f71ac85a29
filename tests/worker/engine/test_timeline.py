import warnings
from fractions import Fraction

import numpy as np
import pytest

from worker.engine.errors import EngineError
from worker.engine.timeline import SyncMode, parse_sync_mode, plan_length

FPS = Fraction(25)


def test_cut_off_keeps_the_shorter() -> None:
    assert plan_length(SyncMode.CUT_OFF, 100, FPS, 2.0).output_frames == 50
    longer_audio = plan_length(SyncMode.CUT_OFF, 100, FPS, 10.0)
    assert longer_audio.output_frames == 100
    assert longer_audio.audio_used_seconds == pytest.approx(4.0)


def test_loop_repeats_the_video_to_the_audio_length() -> None:
    plan = plan_length(SyncMode.LOOP, 10, FPS, 1.0)
    assert plan.output_frames == 25
    assert plan.source_indices(0, 25).tolist() == [*range(10), *range(10), *range(5)]


def test_bounce_plays_forward_then_backward() -> None:
    plan = plan_length(SyncMode.BOUNCE, 4, FPS, 0.4)
    assert plan.source_indices(0, 10).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    single = plan_length(SyncMode.BOUNCE, 1, FPS, 0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a one-frame video has no bounce period to divide by
        assert single.source_indices(0, 5).tolist() == [0] * 5


def test_silence_keeps_the_whole_video_and_pads_or_cuts_audio() -> None:
    plan = plan_length(SyncMode.SILENCE, 100, FPS, 1.0)
    assert plan.output_frames == 100
    assert plan.audio_padding_seconds == pytest.approx(3.0)
    assert plan_length(SyncMode.SILENCE, 100, FPS, 9.0).audio_used_seconds == pytest.approx(4.0)


def test_remap_retimes_the_video_monotonically() -> None:
    plan = plan_length(SyncMode.REMAP, 100, FPS, 8.0)
    indices = plan.source_indices(0, plan.output_frames)
    assert plan.output_frames == 200
    assert indices[0] == 0 and indices[-1] == 99
    assert np.all(np.diff(indices) >= 0)
    # Each output frame shows the source frame nearest its own relative time.
    assert plan_length(SyncMode.REMAP, 4, FPS, 0.32).source_indices(0, 8).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    faster = plan_length(SyncMode.REMAP, 100, FPS, 2.0).source_indices(0, 50)
    assert faster[0] == 1 and faster[-1] == 99  # nearest frame at each output time, every other frame


def test_auto_never_drops_audio_or_video() -> None:
    shorter_video = plan_length(SyncMode.AUTO, 10, FPS, 2.0)
    assert shorter_video.mode is SyncMode.BOUNCE
    assert shorter_video.output_frames == 50
    shorter_audio = plan_length(SyncMode.AUTO, 100, FPS, 2.0)
    assert shorter_audio.requested is SyncMode.AUTO and shorter_audio.mode is SyncMode.SILENCE
    assert shorter_audio.audio_seconds == pytest.approx(2.0)
    # Equal lengths need nothing: the video plays once, as it is.
    assert plan_length(SyncMode.AUTO, 50, FPS, 2.0).mode is SyncMode.SILENCE
    assert shorter_audio.output_frames == 100 and shorter_audio.audio_used_seconds == pytest.approx(2.0)


def test_segment_slices_agree_with_the_whole() -> None:
    plan = plan_length(SyncMode.BOUNCE, 7, FPS, 3.0)
    whole = plan.source_indices(0, plan.output_frames)
    pieces = np.concatenate([plan.source_indices(start, min(start + 9, 75)) for start in range(0, 75, 9)])
    assert np.array_equal(whole, pieces)


def test_unknown_mode_is_a_clear_error() -> None:
    assert parse_sync_mode("loop") is SyncMode.LOOP
    with pytest.raises(EngineError) as raised:
        parse_sync_mode("stretch")
    assert raised.value.code == "invalid_option"
    assert raised.value.message.endswith("choose one of: auto, cut_off, loop, bounce, silence, remap")


def test_the_summary_reports_the_plan() -> None:
    assert plan_length(SyncMode.AUTO, 10, FPS, 1.0).summary() == {
        "requested": "auto",
        "mode": "bounce",
        "source_frames": 10,
        "output_frames": 25,
        "frame_rate": 25.0,
        "output_frame_rate": 25.0,
        "output_seconds": 1.0,
        "audio_seconds": 1.0,
        "audio_used_seconds": 1.0,
        "audio_padding_seconds": 0.0,
    }
    padded = plan_length(SyncMode.SILENCE, 100, FPS, 1.2345678).summary()
    assert padded["audio_used_seconds"] == 1.234568 and padded["audio_padding_seconds"] == 2.765432
    assert padded["output_seconds"] == 4.0 and padded["audio_seconds"] == 1.234568
    ntsc = plan_length(SyncMode.SILENCE, 101, Fraction(30000, 1001), 1.0).summary()
    assert ntsc["output_seconds"] == 3.370033 and ntsc["frame_rate"] == pytest.approx(29.97003)


def test_a_variable_frame_rate_source_is_planned_on_its_own_frame_times() -> None:
    """An animated GIF holding its first picture 0.24 s, then 119 frames of 0.04 s (5.0 s in all)."""
    stamps = np.array([0, *range(24, 24 + 4 * 119, 4)], dtype=np.int64)
    timing = {"time_base": Fraction(1, 100), "timestamps": stamps, "last_frame_ticks": 4}
    silence = plan_length(SyncMode.SILENCE, 120, FPS, 7.67, **timing)
    assert silence.output_frames == 120 and silence.output_seconds == pytest.approx(5.0)
    assert silence.output_frame_rate == pytest.approx(24.0)
    # Past its end the video goes on at its frame rate: 67 more frames of 0.04 s reach 7.68 s.
    bounce = plan_length(SyncMode.AUTO, 120, FPS, 7.67, **timing)
    assert bounce.mode is SyncMode.BOUNCE and bounce.output_frames == 187
    assert bounce.output_seconds == pytest.approx(7.68)
    # Cut where a frame boundary lies nearest the audio's end: frame 78 starts at 0.24 + 77 * 0.04 = 3.32 s.
    cut = plan_length(SyncMode.CUT_OFF, 120, FPS, 3.33, **timing)
    assert cut.output_frames == 78 and cut.output_seconds == pytest.approx(3.32)
    assert cut.clock.pts(0) == 0 and cut.clock.pts(1) == 24 and cut.clock.time_base == Fraction(1, 100)


def test_frame_times_compare_exactly_with_numpy_timestamps() -> None:
    """A Fraction against numpy's int64 multiplies in int64: it must not overflow into a wrong answer."""
    stamps = np.array([0, 3600, 7200], dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = plan_length(SyncMode.CUT_OFF, 3, FPS, 0.09, time_base=Fraction(1, 90000), timestamps=stamps)
    assert plan.output_frames == 2 and plan.output_seconds == pytest.approx(0.08)
