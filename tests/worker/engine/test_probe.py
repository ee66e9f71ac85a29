from fractions import Fraction
from pathlib import Path

import pytest

from tests.media import write_audio, write_video
from worker.engine.errors import EngineError
from worker.engine.probe import Limits, probe_audio, probe_video

# (file name, video codec, pixel format, extra size constraint)
FORMATS = [
    ("clip.mp4", "libx264", "yuv420p"),
    ("clip.mov", "libx264", "yuv420p"),
    ("clip.mkv", "libx265", "yuv420p"),
    ("clip.webm", "libvpx-vp9", "yuv420p"),
    ("clip.webm", "libvpx", "yuv420p"),
    ("clip.mkv", "libsvtav1", "yuv420p"),
    ("clip.avi", "mpeg4", "yuv420p"),
    ("clip.mkv", "ffv1", "yuv444p"),
]


@pytest.mark.parametrize(("name", "codec", "pix_fmt"), FORMATS)
def test_probe_reads_containers_and_codecs(tmp_path: Path, name: str, codec: str, pix_fmt: str) -> None:
    width = 128 if codec == "libsvtav1" else 96
    path = write_video(tmp_path / name, codec=codec, pix_fmt=pix_fmt, frames=17, width=width, height=64)
    info = probe_video(path)
    assert info.frame_count == 17
    assert (info.width, info.height) == (width, 64)
    assert info.frame_rate == 25
    assert info.duration_s == pytest.approx(17 / 25, abs=0.01)
    assert not info.variable_frame_rate


def test_probe_3gp_with_h263(tmp_path: Path) -> None:
    path = write_video(tmp_path / "phone.3gp", codec="h263", width=176, height=144, frames=10, frame_rate=15)
    info = probe_video(path)
    assert (info.frame_count, info.frame_rate) == (10, 15)


def test_probe_counts_frames_of_a_variable_frame_rate_video(tmp_path: Path) -> None:
    times = [0.0, 0.04, 0.08, 0.2, 0.24, 0.5, 0.54, 0.58, 0.62, 0.9]
    path = write_video(tmp_path / "vfr.mkv", frames=len(times), frame_times=times)
    info = probe_video(path)
    assert info.frame_count == 10
    assert info.variable_frame_rate
    assert info.timestamps is not None
    assert [round(float(stamp * info.time_base), 3) for stamp in info.timestamps] == times


def test_probe_reads_rotation_and_odd_sizes(tmp_path: Path) -> None:
    path = write_video(tmp_path / "portrait.mp4", rotation=90, width=96, height=64)
    info = probe_video(path)
    assert info.rotation == 90
    assert info.display_size == (64, 96)
    odd = probe_video(write_video(tmp_path / "odd.mkv", codec="ffv1", width=97, height=63))
    assert (odd.width, odd.height) == (97, 63)


def test_probe_accepts_a_still_image_as_one_frame(tmp_path: Path) -> None:
    path = write_video(tmp_path / "still.png", codec="png", pix_fmt="rgb24", frames=1)
    info = probe_video(path)
    assert info.frame_count == 1


def test_probe_audio_of_many_kinds(tmp_path: Path) -> None:
    assert probe_audio(write_audio(tmp_path / "a.wav", 1.0, rate=8000)).sample_rate == 8000
    assert probe_audio(write_audio(tmp_path / "a.mp3", 1.0, codec="libmp3lame", rate=44100)).codec == "mp3"
    opus = probe_audio(write_audio(tmp_path / "a.ogg", 1.0, codec="libopus", rate=48000, channels=2))
    assert (opus.codec, opus.channels) == ("opus", 2)
    assert probe_audio(write_audio(tmp_path / "a.flac", 1.0, codec="flac")).duration_s == pytest.approx(
        1.0, abs=0.05
    )
    # A video with sound is a valid dub track.
    assert probe_audio(write_video(tmp_path / "with_sound.mp4", audio_seconds=1.0)).codec == "aac"


def expect_error(code: str, action: object) -> EngineError:
    with pytest.raises(EngineError) as raised:
        action()  # type: ignore[operator]
    assert raised.value.code == code
    assert raised.value.message
    return raised.value


def test_broken_inputs_fail_with_stable_codes(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    expect_error("invalid_media", lambda: probe_video(empty))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video at all" * 100)
    expect_error("invalid_media", lambda: probe_video(garbage))
    expect_error("input_not_found", lambda: probe_video(tmp_path / "missing.mp4"))
    sound = write_audio(tmp_path / "sound.wav", 1.0)
    expect_error("no_video_stream", lambda: probe_video(sound))
    silent = write_video(tmp_path / "silent.mp4")
    expect_error("no_audio_stream", lambda: probe_audio(silent))


def test_truncated_video_is_invalid_media(tmp_path: Path) -> None:
    whole = write_video(tmp_path / "whole.mkv", frames=40, width=128, height=96)
    data = whole.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(write_video(tmp_path / "whole.mp4", frames=40).read_bytes()[:2000])
    expect_error("invalid_media", lambda: probe_video(truncated))
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    # Matroska without its end still demuxes: what remains is a shorter, valid video.
    assert 0 < probe_video(cut).frame_count < 40


def test_limits_refuse_long_and_huge_media(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=50)
    expect_error("media_too_long", lambda: probe_video(clip, Limits(max_duration_s=1.0)))
    expect_error("media_too_large", lambda: probe_video(clip, Limits(max_pixels=1000)))
    sound = write_audio(tmp_path / "long.wav", 3.0)
    expect_error("media_too_long", lambda: probe_audio(sound, Limits(max_duration_s=2.0)))


def test_frame_rate_is_exact_for_ntsc(tmp_path: Path) -> None:
    info = probe_video(write_video(tmp_path / "ntsc.mp4", frame_rate=Fraction(30000, 1001), frames=10))
    assert info.frame_rate == Fraction(30000, 1001)
