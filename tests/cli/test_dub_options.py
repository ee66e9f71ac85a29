"""`redub dub` refuses bad options up front, with a JSON error under --json, and never harms its input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media import write_audio, write_video


def redub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    return write_video(tmp_path / "in.mp4", frames=10, width=64, height=48), write_audio(
        tmp_path / "a.wav", 0.4
    )


@pytest.mark.parametrize(
    ("extra", "in_message"),
    [
        (["--crf", "-5"], "--crf"),
        (["--crf", "999"], "--crf"),
        (["--preset", "turbo"], "--preset"),
        (["--speakers", "[]"], "--speakers"),
        (["--speakers", "[" + ",".join(['{"track_id": 0}'] * 21) + "]"], "--speakers"),
    ],
)
def test_bad_options_are_one_json_error(
    inputs: tuple[Path, Path], tmp_path: Path, extra: list[str], in_message: str
) -> None:
    video, audio = inputs
    result = redub(
        "dub",
        "--model",
        "passthrough",
        str(video),
        str(audio),
        "-o",
        str(tmp_path / "out.mp4"),
        "--json",
        *extra,
    )
    assert result.returncode == 1, result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_option" and in_message in error["message"], error
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_output_must_not_be_a_directory_or_an_input(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    video, audio = inputs
    before = video.read_bytes()
    for output in (tmp_path, video, tmp_path / "." / "a.wav"):
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
        assert json.loads(result.stdout)["error"]["code"] == "invalid_option", result.stdout
        assert "Traceback" not in result.stderr
    assert video.read_bytes() == before


def test_a_missing_output_folder_is_created_and_said(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    video, audio = inputs
    output = tmp_path / "new" / "out.mp4"
    result = redub(
        "dub", "--model", "passthrough", str(video), str(audio), "-o", str(output), "--preset", "ultrafast"
    )
    assert result.returncode == 0, result.stderr
    assert output.is_file()
    assert f"created folder {output.parent}" in result.stderr


def test_version() -> None:
    result = redub("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("redub ") and result.stdout.split()[1][0].isdigit()
