"""`redub analyze` as a script uses it: JSON keys to rely on, and errors as JSON with a non-zero exit."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import pytest
import skimage.data

from cli import analyze


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="redub")
    analyze.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "astronaut.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def test_json_report_has_the_stable_keys(photo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["analyze", str(photo), "--json", "--frames"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frame_count"] == 1
    assert report["shots"] == [[0, 0]]
    # A photo cannot show who speaks: its one face is dubbed, and the report says why.
    assert report["speakers"] == [0] and report["speaker_selection"] == "most_prominent_face"
    assert report["frames_without_face"] == 0
    (track,) = report["tracks"]
    assert {"id", "first_frame", "last_frame", "frames_detected", "speaking"} <= set(track)
    assert track["first_frame"] == track["last_frame"] == 0 and track["frames_detected"] == 1
    (frame,) = track["frames"]
    assert frame["detected"] is True and len(frame["landmarks"]) > 40


def test_a_missing_file_is_a_json_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["analyze", str(tmp_path / "nope.mp4"), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "input_not_found"


def test_not_a_video_is_a_json_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 50)
    assert _run(["analyze", str(junk), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "invalid_media"


def test_bad_speakers_and_unknown_pins(photo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["analyze", str(photo), "--json", "--speakers", "{not json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "invalid_option"
    assert _run(["analyze", str(photo), "--json", "--speakers", '[{"track_id": 7}]']) == 1
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "speaker_not_found"
    assert (
        _run(["analyze", str(photo), "--json", "--speakers", '[{"point": {"frame": 0, "x": 5, "y": 5}}]'])
        == 1
    )
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "speaker_not_found"


def test_a_pinned_point_dubs_that_face(photo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        _run(["analyze", str(photo), "--json", "--speakers", '[{"point": {"frame": 0, "x": 225, "y": 140}}]'])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["speakers"] == [0]


def test_plain_output_is_a_summary(photo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["analyze", str(photo)]) == 0
    out = capsys.readouterr().out
    assert "1 frames, 1 shots, 1 face tracks, dubbed tracks [0] (most_prominent_face)" in out
    assert "track 0: frames 0-0" in out
