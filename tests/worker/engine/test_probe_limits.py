"""The pixel and stream-count limits hold before FFmpeg decodes anything: a small file declaring one huge
picture is refused without the picture ever being allocated."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from worker.engine.errors import EngineError
from worker.engine.probe import MAX_STREAMS, probe_video

ROOT = Path(__file__).resolve().parents[3]
SIDE = 16000  # one 16000x16000 grey picture: 256 MB decoded, ~300 KB as a PNG


def _huge_png(path: Path, side: int = SIDE) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\x80" * side  # filter byte, then one grey row
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
    return path


def _huge_mov(path: Path, png: Path) -> Path:
    """A MOV whose one frame is that PNG (the audit's file was a 4.6 MB MOV with one 16000x16000 frame)."""
    with av.open(str(path), "w", format="mov") as container:
        stream = container.add_stream("png", rate=1)
        stream.width = stream.height = SIDE
        stream.pix_fmt = "gray"
        packet = av.Packet(png.read_bytes())
        packet.stream = stream
        packet.pts = packet.dts = 0
        packet.time_base = Fraction(1, 1)
        packet.duration = 1
        container.mux(packet)
    return path


def _probe_in_child(path: Path) -> dict[str, object]:
    """Probe in a fresh process and report its error and how far its peak memory rose."""
    script = (
        "import json, resource, sys\n"
        "from pathlib import Path\n"
        "from worker.engine.errors import EngineError\n"
        "from worker.engine.probe import probe_video\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    probe_video(Path(sys.argv[1]))\n"
        "    code, message = None, ''\n"
        "except EngineError as error:\n"
        "    code, message = error.code, error.message\n"
        "rise = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024\n"
        "print(json.dumps({'code': code, 'message': message, 'rise_mib': rise}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


@pytest.mark.parametrize("kind", ["png", "mov"])
def test_a_huge_picture_is_refused_before_it_is_decoded(tmp_path: Path, kind: str) -> None:
    png = _huge_png(tmp_path / "huge.png")
    path = png if kind == "png" else _huge_mov(tmp_path / "huge.mov", png)
    assert path.stat().st_size < 5 * 1024 * 1024
    report = _probe_in_child(path)
    assert report["code"] == "invalid_media", report
    assert "larger than the limit of 9437184 pixels" in str(report["message"])
    # Decoding it would take 256 MiB (one byte a pixel); refused before any of that is allocated.
    assert float(str(report["rise_mib"])) < 64, report


def _many_streams(path: Path, audio_streams: int) -> Path:
    with av.open(str(path), "w", format="matroska") as container:
        video = container.add_stream("mpeg4", rate=25)
        video.width = video.height = 32
        video.pix_fmt = "yuv420p"
        sounds = [container.add_stream("pcm_s16le", rate=8000) for _ in range(audio_streams)]
        frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
        for packet in [*video.encode(frame), *video.encode(None)]:
            container.mux(packet)
        for sound in sounds:
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
            samples.sample_rate = 8000
            for packet in [*sound.encode(samples), *sound.encode(None)]:
                container.mux(packet)
    return path


def test_too_many_streams_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as caught:
        probe_video(_many_streams(tmp_path / "many.mkv", MAX_STREAMS))  # one video + 32 audio streams
    assert caught.value.code == "media_too_large"
    assert f"more than {MAX_STREAMS} streams" in caught.value.message
    info = probe_video(_many_streams(tmp_path / "enough.mkv", MAX_STREAMS - 1))
    assert (info.width, info.height, info.has_audio) == (32, 32, True)
