"""`redub dub --json` on broken input: one JSON error with a stable code, exit status 1, no traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media import write_audio, write_video


def redub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.timeout(150)
@pytest.mark.parametrize("broken_role", ["video", "audio"])
def test_broken_input_gives_a_json_error_and_exits_1(tmp_path: Path, broken_role: str) -> None:
    audio = write_audio(tmp_path / "dub.wav", 0.4)
    video = write_video(tmp_path / "clip.mp4", width=64, height=48, frames=8)
    if broken_role == "video":
        broken = tmp_path / "truncated.mp4"
        broken.write_bytes(video.read_bytes()[: video.stat().st_size // 3])  # the index at the end is cut off
        video = broken
    else:
        broken = tmp_path / "page.mkv"
        broken.write_bytes(b"<!DOCTYPE html><html><body>403 Forbidden</body></html>\n")
        audio = broken
    before = sorted(tmp_path.iterdir())
    output = tmp_path / "out.mp4"
    result = redub(
        "dub",
        "--model",
        "passthrough",
        str(video),
        str(audio),
        "-o",
        str(output),
        "--json",
        "--preset",
        "ultrafast",
    )
    assert result.returncode == 1, result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_media"
    assert error["message"].startswith(f"{broken.name} is not a media file")
    assert str(tmp_path) not in error["message"]
    assert "Traceback" not in result.stderr
    assert sorted(tmp_path.iterdir()) == before  # no output, no partial file
