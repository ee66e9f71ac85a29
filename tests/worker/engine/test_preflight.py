"""preflight(): the estimate follows the renderer the dub would run and what this deployment measured."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.engine.pipeline import DubOptions
from worker.engine.preflight import Costs, preflight

SAMPLES = Path(__file__).parents[3] / "samples"


@pytest.fixture(scope="module")
def reports() -> dict[str, dict]:
    video, audio = SAMPLES / "speaker.mp4", SAMPLES / "dub_speech.m4a"
    measured = Costs(
        seconds_per_frame=0.5, frames_measured_over=7, seconds_per_video_second=3.0, dubs_measured_over=9
    )
    assumed = Costs(seconds_per_frame=0.25, frames_measured_over=0)
    return {
        "measured": preflight(video, audio, DubOptions(renderer="dit"), measured),
        "assumed": preflight(video, audio, DubOptions(renderer="dit"), assumed),
        "passthrough": preflight(video, audio, DubOptions(renderer="passthrough"), measured),
    }


def test_a_measured_render_rate_and_processing_time(reports: dict[str, dict]) -> None:
    report = reports["measured"]
    estimate = report["estimate"]
    assert estimate["frames_to_render"] > 0 and estimate["seconds_per_frame_measured"] is True
    assert estimate["render_seconds"] == pytest.approx(0.5 * estimate["frames_to_render"], abs=0.1)
    video_s = report["input"]["video"]["duration_s"]
    assert estimate["processing_seconds"] == pytest.approx(3.0 * video_s, abs=0.1)
    assert "last 7 succeeded dubs with this model" in estimate["note"]
    assert "last 9 succeeded dubs" in estimate["note"]


def test_an_assumed_render_rate_says_so(reports: dict[str, dict]) -> None:
    estimate = reports["assumed"]["estimate"]
    assert estimate["seconds_per_frame_measured"] is False and estimate["seconds_per_frame"] == 0.25
    assert "REDUB_RENDER_SECONDS_PER_FRAME" in estimate["note"] and "assumption" in estimate["note"]
    assert estimate["processing_seconds"] is None


def test_passthrough_promises_no_render_time(reports: dict[str, dict]) -> None:
    estimate = reports["passthrough"]["estimate"]
    assert estimate["render_seconds"] == 0 and estimate["seconds_per_frame"] == 0
    assert "passthrough" in estimate["note"]
