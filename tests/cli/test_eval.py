"""`redub eval` as scripts use it: the JSON shape, and bad options as JSON errors."""

from __future__ import annotations

import argparse
import json

import pytest

from cli import eval as evaluation

CONDITION_KEYS = {
    "name": str,
    "clips": int,
    "sync_r": float,
    "sync_offset_frames": int,
    "lower_face_psnr_db": float,
    "outside_mask_changed_pixels": int,
    "occluder_psnr_db": (float, type(None)),
    "listener_changed_pixels": (int, type(None)),
    "seam_flicker": float,
    "source_sync_r": float,
}


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="redub")
    evaluation.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_passthrough_on_one_clean_clip(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["eval", "--renderer", "passthrough", "--seeds", "1", "--conditions", "clean", "--json"]
    assert _run([*argv, "--seconds", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["renderer"] == "passthrough" and report["checkpoint"] is None
    (condition,) = report["conditions"]
    for key, kind in CONDITION_KEYS.items():
        assert isinstance(condition[key], kind), (key, condition[key])
    assert condition["name"] == "clean" and condition["clips"] == 1
    # An audio-only dub changes no pixel: nothing outside the masks, the lower face still says utterance A.
    assert condition["outside_mask_changed_pixels"] == 0
    assert condition["occluder_psnr_db"] is None and condition["listener_changed_pixels"] is None
    assert -2 <= condition["sync_offset_frames"] <= 2 and -1 <= condition["sync_r"] <= 1
    assert condition["source_sync_r"] == condition["sync_r"]  # passthrough shows the source's mouth
    assert condition["lower_face_psnr_db"] < 60  # the source's mouth says other words than the truth's
    assert report["summary"]["sync_r"] == condition["sync_r"] and report["summary"]["clips"] == 1
    (clip,) = report["clips"]
    assert len(clip["segments"]) >= 2 and clip["frames"] == 50


def test_the_ceiling_dubs_the_truth_through_the_vae(capsys: pytest.CaptureFixture[str]) -> None:
    # The shipped checkpoint (the default): its VAE round trip of the truth, scored against the truth.
    argv = ["eval", "--ceiling", "--conditions", "clean", "--seconds", "2", "--json"]
    assert _run(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["renderer"] == "vae-ceiling" and report["settings"]["ceiling"] is True
    (condition,) = report["conditions"]
    assert condition["source_sync_r"] == pytest.approx(1.0)  # what was dubbed is the truth itself
    assert condition["outside_mask_changed_pixels"] == 0
    # The VAE keeps the mouth readable on a clean face (0.88 measured), but loses detail: not a perfect copy.
    assert condition["sync_r"] > 0.5 and 15 < condition["lower_face_psnr_db"] < 40


def test_a_table_without_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["eval", "--renderer", "passthrough", "--conditions", "clean", "--seconds", "1.2"]
    assert _run([*argv, "--segment-frames", "17"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| condition |") and "| clean | 1 |" in out
    assert "over 1 conditions: sync r " in out and "outside changed 0 px" in out


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--renderer", "passthrough", "--write-card"], "invalid_option"),  # no card to write to
        (["--renderer", "passthrough", "--ceiling"], "invalid_option"),  # no VAE to round-trip through
        (["--renderer", "passthrough", "--conditions", "underwater"], "invalid_option"),
        (["--renderer", "passthrough", "--size", "huge"], "invalid_option"),
        (["--renderer", "passthrough", "--size", "641x360"], "invalid_option"),
        (["--renderer", "passthrough", "--seeds", "0"], "invalid_option"),
        (["--renderer", "passthrough", "--seconds", "-1"], "invalid_option"),
        (["--renderer", "passthrough", "--segment-frames", "30"], "invalid_option"),
        (["--renderer", "marble"], "invalid_option"),
        (["--checkpoint", "/nonexistent/checkpoint"], "model_unavailable"),
    ],
)
def test_bad_options_are_json_errors(argv: list[str], code: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["eval", *argv, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"]["code"] == code


def test_sizes() -> None:
    assert evaluation.parse_size("720p") == (720, 1280)
    assert evaluation.parse_size("640x360") == (360, 640)
    with pytest.raises(ValueError):
        evaluation.parse_size("360x")
