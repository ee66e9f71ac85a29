"""Voice activity of real speech (espeak-ng recordings in tests/data) placed at known times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.worker.engine.analysis.footage import SPEECH_EN, load_speech, place_speech, write_audio, write_clip
from worker.engine.analysis.voice import detect_voice
from worker.engine.errors import NO_AUDIO_STREAM, EngineError


def test_speech_is_found_where_it_was_placed(tmp_path: Path) -> None:
    speech = load_speech(SPEECH_EN)
    audio = write_audio(tmp_path / "speech.m4a", place_speech(speech, 1.0, 6.0))
    voice = detect_voice(audio)
    assert voice is not None
    first_start = voice.segments[0][0]
    last_end = voice.segments[-1][1]
    assert abs(first_start - 1.0) < 0.15
    assert abs(last_end - (1.0 + len(speech) / 16_000)) < 0.4
    flags = voice.frames_with_speech(150, 25.0)
    assert not flags[:20].any() and flags[30:100].mean() > 0.9 and not flags[-20:].any()
    # Frame times of a variable-frame-rate video give the same answer as the frame grid they lie on.
    np.testing.assert_array_equal(voice.speech_at(np.arange(150) / 25.0, 1 / 25.0), flags)


def test_silence_has_no_speech(tmp_path: Path) -> None:
    voice = detect_voice(write_audio(tmp_path / "silence.flac", np.zeros(32_000, dtype=np.float32)))
    assert voice is not None and voice.segments == ()


def test_a_video_without_sound(tmp_path: Path) -> None:
    video = write_clip(tmp_path / "mute.mp4", [np.zeros((32, 32, 3), np.uint8)] * 3)
    assert detect_voice(video, required=False) is None
    with pytest.raises(EngineError) as raised:
        detect_voice(video)
    assert raised.value.code == NO_AUDIO_STREAM
