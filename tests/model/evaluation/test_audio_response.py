"""The audio-response probe: its correlation arithmetic, and one real run on a random checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.checkpoints import build_random_checkpoint, load_pipeline
from model.evaluation.audio_response import mask_brightness, measure, within_window_r


def test_each_window_is_judged_on_its_own_variation() -> None:
    opening = [np.array([0.0, 0.1, 0.2]), np.array([0.2, 0.0, 0.1])]
    # Darker when open, on two windows whose overall brightness differs a lot.
    signals = [100 - 50 * opening[0], 200 - 50 * opening[1]]
    assert within_window_r(signals, opening) == pytest.approx(-1.0)
    assert within_window_r([np.full(3, 7.0), np.full(3, 9.0)], opening) == 0.0


def test_brightness_is_read_inside_the_mask_only() -> None:
    frames = np.zeros((2, 4, 4, 3))
    frames[:, :2] = 200
    masks = np.zeros((2, 4, 4))
    masks[0, :2] = 1
    masks[1, 2:] = 1
    assert mask_brightness(frames, masks).tolist() == [200.0, 0.0]


def test_a_random_model_is_measured_against_a_truth_that_darkens_when_open(tmp_path: Path) -> None:
    pipeline = load_pipeline(build_random_checkpoint(tmp_path / "random", "mini", seed=0), "cpu")
    figures = measure(pipeline, pairs=1)
    assert figures["windows"] == 4
    # The synthetic truth: an open mouth is darker inside the lower-face mask.
    assert figures["truth_r"] < 0.0
    assert np.isfinite(figures["audio_r"]) and np.isfinite(figures["silent_r"])
    assert figures["audio_effect"] >= 0.0
