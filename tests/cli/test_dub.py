import functools
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.media import write_audio, write_video


def redub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_dub_json_reports_inputs_plan_and_output(tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.mov", frames=20)
    audio = write_audio(tmp_path / "dub.wav", 1.0)
    out = tmp_path / "nested" / "out.mp4"
    result = redub(
        "dub",
        "--model",
        "passthrough",
        str(video),
        str(audio),
        "-o",
        str(out),
        "--sync-mode",
        "loop",
        "--json",
        "--preset",
        "ultrafast",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["plan"]["mode"] == "loop"
    assert report["output"]["frame_count"] == 25
    assert report["input"]["video"]["frame_count"] == 20
    assert {"probe", "decode", "encode"} <= set(report["seconds"])
    assert out.is_file()


def test_dub_failure_prints_a_json_error_and_exits_non_zero(tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.mp4", frames=5)
    result = redub(
        "dub", "--model", "passthrough", str(video), str(video), "-o", str(tmp_path / "out.mp4"), "--json"
    )
    assert result.returncode == 1
    assert json.loads(result.stdout) == {
        "error": {"code": "no_audio_stream", "message": "in.mp4 has no audio stream"}
    }
    assert "Traceback" not in result.stderr
    missing = redub(
        "dub",
        "--model",
        "passthrough",
        str(tmp_path / "nope.mp4"),
        str(video),
        "-o",
        str(tmp_path / "o.mp4"),
        "--json",
    )
    assert json.loads(missing.stdout)["error"]["code"] == "input_not_found"


def test_dub_without_json_prints_a_summary(tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.mp4", frames=10)
    audio = write_audio(tmp_path / "dub.wav", 0.4)
    result = redub(
        "dub",
        "--model",
        "passthrough",
        str(video),
        str(audio),
        "-o",
        str(tmp_path / "o.mp4"),
        "--preset",
        "ultrafast",
    )
    assert result.returncode == 0
    assert "10 frames" in result.stdout
    bad = redub("dub", str(video), str(audio), "-o", str(tmp_path / "o.mp4"), "--model", "nope")
    assert bad.returncode == 1 and "invalid_option" in bad.stderr


@pytest.fixture
def media_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on loopback serving a folder."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


def test_dub_downloads_url_inputs(tmp_path: Path, media_server: tuple[str, Path]) -> None:
    base, folder = media_server
    write_video(folder / "clip.mp4", frames=15)
    write_audio(folder / "voice.wav", 0.6)
    out = tmp_path / "out.mp4"
    result = redub(
        "dub", "--model", "passthrough", f"{base}/clip.mp4", f"{base}/voice.wav", "-o", str(out), "--json"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["output"]["frame_count"] == 15
    missing = redub(
        "dub", "--model", "passthrough", f"{base}/nope.mp4", f"{base}/voice.wav", "-o", str(out), "--json"
    )
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["error"]["code"] == "fetch_failed"
