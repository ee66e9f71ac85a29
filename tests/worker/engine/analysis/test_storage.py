"""A saved analysis loads back into the same report and draws the same masks (for render workers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.worker.engine.analysis.conftest import Conversation
from worker.engine.analysis.storage import load_analysis, save_analysis
from worker.engine.errors import INVALID_MEDIA, EngineError


def test_round_trip(conversation: Conversation, tmp_path: Path) -> None:
    path = tmp_path / "analysis.npz"
    save_analysis(conversation.analysis, path)
    loaded = load_analysis(path)
    assert loaded.to_dict(include_frames=True) == conversation.analysis.to_dict(include_frames=True)
    frames = np.arange(30, 50)
    expected = conversation.analysis.segment_masks(frames, output_start=30)
    assert expected is not None
    np.testing.assert_array_equal(loaded.segment_masks(frames, output_start=30), expected)


def test_not_an_analysis(tmp_path: Path) -> None:
    path = tmp_path / "junk.npz"
    path.write_bytes(b"junk")
    with pytest.raises(EngineError) as raised:
        load_analysis(path)
    assert raised.value.code == INVALID_MEDIA
