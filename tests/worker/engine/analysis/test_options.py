"""Request options: the no-face policy and speaker pins, with clear errors for bad values."""

from __future__ import annotations

from typing import Any

import pytest

from worker.engine.analysis.options import AnalysisOptions, PinBox, SpeakerPin
from worker.engine.errors import INVALID_OPTION, EngineError


def test_pins_of_each_kind() -> None:
    options = AnalysisOptions.from_request(
        on_no_face="fail",
        speakers=[
            {"track_id": 2},
            {"point": {"frame": 5, "x": 10, "y": 20.5}},
            {"boxes": [{"frame": 1, "x": 0, "y": 0, "width": 30, "height": 40}]},
        ],
    )
    assert options.on_no_face == "fail"
    assert options.speakers == (
        SpeakerPin(track_id=2),
        SpeakerPin(point=(5, 10.0, 20.5)),
        SpeakerPin(boxes=(PinBox(1, 0.0, 0.0, 30.0, 40.0),)),
    )
    assert AnalysisOptions.from_request().speakers is None


@pytest.mark.parametrize(
    "speaker",
    [
        {},
        {"track_id": 1, "point": {"frame": 0, "x": 0, "y": 0}},
        {"track_id": -1},
        {"track_id": True},
        {"point": {"frame": 0, "x": 1}},
        {"point": {"frame": -3, "x": 1, "y": 1}},
        {"boxes": []},
        {"boxes": [{"frame": 0, "x": 0, "y": 0, "width": 0, "height": 5}]},
        "face",
    ],
)
def test_bad_pins_are_refused(speaker: Any) -> None:
    with pytest.raises(EngineError) as raised:
        AnalysisOptions.from_request(speakers=[speaker])
    assert raised.value.code == INVALID_OPTION


def test_a_bad_no_face_policy_is_refused() -> None:
    with pytest.raises(EngineError) as raised:
        AnalysisOptions(on_no_face="skip")
    assert raised.value.code == INVALID_OPTION
