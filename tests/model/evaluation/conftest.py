"""A talking pair made without the synthetic generator: the astronaut photo with a jaw driven by speech.

The source says one sentence, the truth the same face saying another (the dub audio); a third clip keeps
the mouth shut. Built once per session from the analysis tests' footage helpers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from model.evaluation.benchmark import Truth
from tests.worker.engine.analysis.footage import (
    SPEECH_EN,
    SPEECH_ES,
    Placement,
    background,
    compose,
    envelope,
    load_speech,
    place_speech,
    write_audio,
    write_clip,
)
from worker.engine.analysis.analysis import analyze

FRAME_RATE = 25
WIDTH, HEIGHT = 480, 270
SECONDS = 2.4


@dataclass(frozen=True)
class TalkingPair:
    source: Path  # says the English sentence
    frozen: Path  # the same face and motion, mouth shut, English audio
    truth: Path  # says the Spanish sentence
    dub_audio: Path  # the Spanish sentence
    truth_opening: np.ndarray  # (frames,) the jaw opening that drew the truth
    truth_scores: Truth


@pytest.fixture(scope="session")
def talking_pair(tmp_path_factory: pytest.TempPathFactory) -> TalkingPair:
    folder = tmp_path_factory.mktemp("talking-pair")
    frames = round(SECONDS * FRAME_RATE)
    canvas = background(WIDTH, HEIGHT, seed=4)
    source_audio = place_speech(load_speech(SPEECH_EN), 0.1, SECONDS)
    dub_audio = place_speech(load_speech(SPEECH_ES), 0.1, SECONDS)
    source_opening = 14 * envelope(source_audio, FRAME_RATE, frames)
    truth_opening = 14 * envelope(dub_audio, FRAME_RATE, frames)

    def clip(openings: np.ndarray) -> Iterator[np.ndarray]:
        for index, opening in enumerate(openings):
            frame = canvas.copy()
            compose(frame, Placement(200 + index * 0.5, 135, 170, opening=float(opening)))
            yield frame

    source = write_clip(folder / "source.mp4", clip(source_opening), audio=source_audio)
    frozen = write_clip(folder / "frozen.mp4", clip(np.zeros(frames)), audio=source_audio)
    truth = write_clip(folder / "truth.mp4", clip(truth_opening), audio=dub_audio)
    dub = write_audio(folder / "dub.wav", dub_audio)
    # The truth's face and lower-face mask as the engine sees them (the generator would know them exactly).
    analysis = analyze(truth, dub)
    (track,) = analysis.tracks
    masks = analysis.segment_masks(np.arange(frames), 0)
    assert masks is not None
    scores = Truth(lower_face=masks > 0.5, landmarks=track.points)
    return TalkingPair(source, frozen, truth, dub, truth_opening, scores)
