"""Hostile input: broken, truncated and disguised files must fail fast with a stable code, or dub cleanly.

Every case is derived deterministically from real clips encoded by tests/media.py. `dub()` must either
finish with an output that decodes to the planned frame count, or raise EngineError with a known code and a
message for a person; never another exception, never a hang, never a partial output left behind.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from tests.media import write_audio, write_video
from worker.engine import errors
from worker.engine.audio_io import decode_for_models
from worker.engine.errors import EngineError
from worker.engine.pipeline import DubOptions, dub

OPTIONS = DubOptions(preset="ultrafast", segment_frames=9, segment_overlap=2)
# Bounce plays the video forwards then backwards: the reader seeks back through the damaged file.
BOUNCE = DubOptions(preset="ultrafast", segment_frames=9, segment_overlap=2, sync_mode="bounce")
KNOWN_CODES = {value for name, value in vars(errors).items() if name.isupper() and isinstance(value, str)}

# name -> (file name, writer); tiny sizes keep the whole file fast on a shared 2-core machine.
VIDEO_CLIPS: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "mp4_h264": ("clip.mp4", lambda path: write_video(path, width=64, height=48, frames=12)),
    "mkv_hevc": (
        "clip.mkv",
        lambda path: write_video(
            path, codec="libx265", width=64, height=48, frames=12, options={"x265-params": "log-level=none"}
        ),
    ),
    "webm_vp9": (
        "clip.webm",
        lambda path: write_video(path, codec="libvpx-vp9", width=64, height=48, frames=12),
    ),
    "avi_mpeg4": ("clip.avi", lambda path: write_video(path, codec="mpeg4", width=64, height=48, frames=12)),
    "mov_h264_sound": (
        "clip.mov",
        lambda path: write_video(path, width=64, height=48, frames=12, audio_seconds=0.5),
    ),
    # The index comes first, so a truncated copy still lists every packet: the payload runs out mid-read.
    "mp4_faststart_sound": ("faststart.mp4", lambda path: _faststart(path)),
}
AUDIO_CLIPS: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "wav": ("dub.wav", lambda path: write_audio(path, 0.5)),
    "mp3": ("dub.mp3", lambda path: write_audio(path, 0.5, codec="libmp3lame", rate=44100)),
    "ogg_opus": ("dub.ogg", lambda path: write_audio(path, 0.5, codec="libopus", rate=48000)),
}


def _faststart(path: Path) -> Path:
    plain = write_video(path.with_name("plain.mp4"), width=64, height=48, frames=12, audio_seconds=0.5)
    with av.open(str(plain)) as source, av.open(str(path), "w", options={"movflags": "+faststart"}) as copy:
        streams = {stream.index: copy.add_stream_from_template(stream) for stream in source.streams}
        for packet in source.demux():
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            packet.stream = streams[packet.stream.index]
            copy.mux(packet)
    return path


def truncate(fraction: float) -> Callable[[bytes], bytes]:
    return lambda data: data[: int(len(data) * fraction)]


def overwrite(where: float, count: int) -> Callable[[bytes], bytes]:
    """Replace `count` bytes at a fraction of the file with seeded noise."""

    def damage(data: bytes) -> bytes:
        start = min(int(len(data) * where), max(0, len(data) - count))
        noise = np.random.default_rng(len(data) + count).integers(0, 256, count, dtype=np.uint8).tobytes()
        return data[:start] + noise[: len(data) - start] + data[start + count :]

    return damage


def zero_chunks(data: bytes, chunk: int = 256, every: int = 3) -> bytes:
    """Zero every third chunk after the first (the header survives, the payload is holed)."""
    buffer = bytearray(data)
    for start in range(chunk, len(buffer), chunk * every):
        buffer[start : start + chunk] = bytes(len(buffer[start : start + chunk]))
    return bytes(buffer)


def _boxes(data: bytes) -> list[tuple[int, int, bytes]]:
    """Top-level ISO-BMFF boxes: (offset, size, type)."""
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        if size < 8:
            break
        boxes.append((offset, size, kind))
        offset += size
    return boxes


def without_box(kind: bytes) -> Callable[[bytes], bytes]:
    def damage(data: bytes) -> bytes:
        for offset, size, found in _boxes(data):
            if found == kind:
                return data[:offset] + data[offset + size :]
        raise AssertionError(f"no {kind!r} box")

    return damage


def huge_box(kind: bytes) -> Callable[[bytes], bytes]:
    """Declare a box far larger than the file."""

    def damage(data: bytes) -> bytes:
        for offset, _size, found in _boxes(data):
            if found == kind:
                return data[:offset] + struct.pack(">I", 0xFFFFFFF0) + data[offset + 4 :]
        raise AssertionError(f"no {kind!r} box")

    return damage


def noise_payload(data: bytes) -> bytes:
    """Keep every header and index, replace the media payload (mdat) with seeded noise."""
    for offset, size, found in _boxes(data):
        if found == b"mdat":
            noise = np.random.default_rng(size).integers(0, 256, size - 8, dtype=np.uint8).tobytes()
            return data[: offset + 8] + noise + data[offset + size :]
    raise AssertionError("no mdat box")


def huge_wav_sizes(data: bytes) -> bytes:
    """A WAV whose RIFF and data chunks claim 4 GiB."""
    buffer = bytearray(data)
    buffer[4:8] = struct.pack("<I", 0xFFFFFFFF)
    position = buffer.find(b"data")
    buffer[position + 4 : position + 8] = struct.pack("<I", 0xFFFFFFFF)
    return bytes(buffer)


GENERIC = {
    "truncated_2pct": truncate(0.02),
    "truncated_30pct": truncate(0.3),
    "truncated_70pct": truncate(0.7),
    "truncated_97pct": truncate(0.97),
    "header_overwritten": overwrite(0.0, 64),
    "middle_overwritten": overwrite(0.5, 256),
    "zeroed_chunks": zero_chunks,
}
ISO_BMFF = {
    "moov_missing": without_box(b"moov"),
    "mdat_missing": without_box(b"mdat"),
    "moov_huge_size": huge_box(b"moov"),
    "mdat_huge_size": huge_box(b"mdat"),
    "mdat_noise": noise_payload,
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    made = {}
    for name, (file_name, writer) in {**VIDEO_CLIPS, **AUDIO_CLIPS}.items():
        made[name] = writer(folder / file_name)
    made["jpeg"] = _write_jpeg(folder / "still.jpg")
    made["long_wav"] = write_audio(folder / "long.wav", 1.2)
    return made


def _write_jpeg(path: Path) -> Path:
    from tests.media import pattern_frame

    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        frame = av.VideoFrame.from_ndarray(pattern_frame(0, 64, 48), format="rgb24")
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _cases() -> list[tuple[str, str, str]]:
    """(clip, corruption, extension of the damaged copy)."""
    cases: list[tuple[str, str, str]] = []
    for clip, (file_name, _writer) in {**VIDEO_CLIPS, **AUDIO_CLIPS}.items():
        extension = Path(file_name).suffix
        cases.extend((clip, damage, extension) for damage in GENERIC)
        if extension in (".mp4", ".mov"):
            cases.extend((clip, damage, extension) for damage in ISO_BMFF)
    cases.append(("wav", "huge_wav_sizes", ".wav"))
    return cases


def _damaged(clips: dict[str, Path], clip: str, damage: str, extension: str, folder: Path) -> Path:
    corruptions = {**GENERIC, **ISO_BMFF, "huge_wav_sizes": huge_wav_sizes}
    path = folder / f"{clip}-{damage}{extension}"
    path.write_bytes(corruptions[damage](clips[clip].read_bytes()))
    return path


def assert_fails_cleanly_or_dubs(
    video: Path, audio: Path, folder: Path, options: DubOptions = OPTIONS
) -> None:
    """The contract of issue 2 for one call of dub()."""
    out_dir = folder / "out"
    out_dir.mkdir()
    output = out_dir / "dubbed.mp4"
    try:
        report = dub(video, audio, output, options)
    except EngineError as error:
        assert error.code in KNOWN_CODES, error.code
        assert error.message.strip() and "Traceback" not in error.message
        for source in (video, audio):
            assert str(source.parent) not in error.message, "the message leaks a server path"
        assert list(out_dir.iterdir()) == [], "a failed dub left files behind"
        return
    assert [path.name for path in out_dir.iterdir()] == ["dubbed.mp4"]
    with av.open(str(output)) as container:
        decoded = sum(1 for _frame in container.decode(video=0))
    assert decoded == report.plan.output_frames == report.output["frame_count"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("clip", "damage", "extension"), _cases())
def test_damaged_file_as_video_and_as_audio(
    clips: dict[str, Path], tmp_path: Path, clip: str, damage: str, extension: str
) -> None:
    broken = _damaged(clips, clip, damage, extension, tmp_path)
    for role in ("as_video", "as_video_bounced", "as_audio"):
        (tmp_path / role).mkdir()
    assert_fails_cleanly_or_dubs(broken, clips["wav"], tmp_path / "as_video")
    assert_fails_cleanly_or_dubs(broken, clips["long_wav"], tmp_path / "as_video_bounced", BOUNCE)
    assert_fails_cleanly_or_dubs(clips["mp4_h264"], broken, tmp_path / "as_audio")


DISGUISES: dict[str, Callable[[dict[str, Path]], bytes]] = {
    "text": lambda clips: b"this is not a video\n" * 50,
    "html": lambda clips: (
        b"<!DOCTYPE html><html><head><title>404 Not Found</title></head>"
        b"<body><h1>Not Found</h1></body></html>\n"
    ),
    "jpeg": lambda clips: clips["jpeg"].read_bytes(),
    "one_byte": lambda clips: b"\x00",
    "zeros": lambda clips: bytes(4096),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("disguise", DISGUISES)
@pytest.mark.parametrize("extension", [".mp4", ".mkv", ".wav"])
def test_other_content_under_a_media_extension(
    clips: dict[str, Path], tmp_path: Path, disguise: str, extension: str
) -> None:
    fake = tmp_path / f"fake{extension}"
    fake.write_bytes(DISGUISES[disguise](clips))
    (tmp_path / "as_video").mkdir()
    (tmp_path / "as_audio").mkdir()
    assert_fails_cleanly_or_dubs(fake, clips["wav"], tmp_path / "as_video")
    assert_fails_cleanly_or_dubs(clips["mp4_h264"], fake, tmp_path / "as_audio")


@pytest.mark.timeout(60)
def test_text_disguised_as_video_fails_with_invalid_media(clips: dict[str, Path], tmp_path: Path) -> None:
    fake = tmp_path / "page.mp4"
    fake.write_bytes(DISGUISES["html"](clips))
    with pytest.raises(EngineError) as caught:
        dub(fake, clips["wav"], tmp_path / "out.mp4", OPTIONS)
    assert caught.value.code == errors.INVALID_MEDIA
    assert "page.mp4" in caught.value.message


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("script.mp4", "ffconcat version 1.0\nfile 'neighbour.mp4'\n"),
        ("list.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nneighbour.mp4\n#EXT-X-ENDLIST\n"),
    ],
    ids=["ffconcat", "hls"],
)
def test_a_playlist_of_other_files_is_refused(
    clips: dict[str, Path], tmp_path: Path, name: str, text: str
) -> None:
    """FFmpeg would follow it to files beside the upload (another job's media): an input must be media."""
    (tmp_path / "neighbour.mp4").write_bytes(clips["mov_h264_sound"].read_bytes())
    (tmp_path / name).write_text(text)
    for video, audio in ((tmp_path / name, clips["wav"]), (clips["mp4_h264"], tmp_path / name)):
        with pytest.raises(EngineError) as caught:
            dub(video, audio, tmp_path / "out.mp4", OPTIONS)
        assert caught.value.code == errors.INVALID_MEDIA
        assert "refers to other files" in caught.value.message
        assert not (tmp_path / "out.mp4").exists()


@pytest.mark.timeout(60)
def test_mp4_without_moov_fails_with_invalid_media(clips: dict[str, Path], tmp_path: Path) -> None:
    broken = _damaged(clips, "mp4_h264", "moov_missing", ".mp4", tmp_path)
    with pytest.raises(EngineError) as caught:
        dub(broken, clips["wav"], tmp_path / "out.mp4", OPTIONS)
    assert caught.value.code == errors.INVALID_MEDIA


@pytest.mark.timeout(60)
@pytest.mark.parametrize("clip", ["mp4_h264", "mp4_faststart_sound"])
def test_a_scratch_mid_stream_is_played_through(clips: dict[str, Path], tmp_path: Path, clip: str) -> None:
    """One damaged packet is skipped (and its frame repeated), as players do; the dub still succeeds."""
    broken = _damaged(clips, clip, "middle_overwritten", ".mp4", tmp_path)
    report = dub(broken, clips["long_wav"], tmp_path / "out.mp4", BOUNCE)
    assert report.output["frame_count"] == report.plan.output_frames == 30


@pytest.mark.timeout(60)
def test_noise_for_a_payload_fails_as_damaged(clips: dict[str, Path], tmp_path: Path) -> None:
    """Past a bound, skipping stops: a file whose every packet is noise is corrupt, not scratched."""
    broken = _damaged(clips, "mp4_h264", "mdat_noise", ".mp4", tmp_path)
    with pytest.raises(EngineError) as caught:
        dub(broken, clips["wav"], tmp_path / "out.mp4", OPTIONS)
    assert caught.value.code == errors.INVALID_MEDIA
    assert "packets are damaged" in caught.value.message


@pytest.mark.timeout(60)
def test_undamaged_clips_dub(clips: dict[str, Path], tmp_path: Path) -> None:
    """The sources themselves are good: damage, not the clip, is what makes a case fail."""
    for name in VIDEO_CLIPS:
        (tmp_path / name).mkdir()
        assert_fails_cleanly_or_dubs(clips[name], clips["ogg_opus"], tmp_path / name)
        assert (tmp_path / name / "out" / "dubbed.mp4").is_file(), name
    for name in AUDIO_CLIPS:
        (tmp_path / name).mkdir()
        assert_fails_cleanly_or_dubs(clips["mp4_h264"], clips[name], tmp_path / name)
        assert (tmp_path / name / "out" / "dubbed.mp4").is_file(), name


@pytest.mark.timeout(60)
def test_audio_decode_is_bounded_whatever_the_headers_say(clips: dict[str, Path], tmp_path: Path) -> None:
    """The decode itself stops at the limit; the probe's header check is not the only guard."""
    with pytest.raises(EngineError) as caught:
        decode_for_models(clips["mp3"], tmp_path, max_seconds=0.2)
    assert caught.value.code == errors.MEDIA_TOO_LONG
    assert decode_for_models(clips["mp3"], tmp_path, max_seconds=0.6).duration_s >= 0.5
