"""`redub synth`: folders a training run can read back, a JSON summary, and usage errors with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from model.synth import read_pair


def test_writes_one_folder_per_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["synth", str(tmp_path), "--conditions", "clean,hair", "--seeds", "4-5", "--size", "96x128"]
    assert main([*argv, "--seconds", "0.6", "--split", "heldout", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["count"] == 4 and summary["split"] == "heldout" and summary["size"] == [96, 128]
    assert [(item["condition"], item["seed"]) for item in summary["pairs"]] == [
        ("clean", 4), ("clean", 5), ("hair", 4), ("hair", 5)
    ]  # fmt: skip
    pair = read_pair(tmp_path / "hair" / "5")
    assert (pair.condition, pair.seed, pair.split) == ("hair", 5, "heldout")
    assert pair.target.frames.shape == (15, 96, 128, 3)
    assert pair.target.occluder is not None and pair.target.occluder.any()
    assert np.array_equal(pair.source.occluder, pair.target.occluder)


def test_plain_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", str(tmp_path), "--conditions", "clean", "--size", "64x64", "--seconds", "0.5"]) == 0
    assert "1 pairs" in capsys.readouterr().out
    assert (tmp_path / "clean" / "0" / "truth.npz").is_file()


@pytest.mark.parametrize(
    "option",
    [
        ["--conditions", "underwater"],
        ["--seeds", "9-2"],
        ["--seeds", "many"],
        ["--size", "tiny"],
        ["--size", "10x10"],
        ["--split", "test"],
        ["--seconds", "0"],
    ],
)
def test_bad_options_exit_2_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str]
) -> None:
    assert main(["synth", str(tmp_path / "out"), *option, "--json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert (error["code"] == "invalid_option" and option[0] in error["message"]) or "condition" in error[
        "message"
    ]
    assert not (tmp_path / "out").exists()
    assert main(["synth", str(tmp_path / "out"), *option]) == 2
    assert "[invalid_option]" in capsys.readouterr().err


def test_unknown_flag_is_argparse_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["synth", str(tmp_path), "--colour", "red"])
    assert stopped.value.code == 2
