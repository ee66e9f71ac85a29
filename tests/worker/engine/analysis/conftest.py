"""Clips shared by the analysis tests, made once per session (analysis runs are the slow part)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

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
from worker.engine.analysis.analysis import Analysis, analyze

FRAME_RATE = 25
WIDTH, HEIGHT = 480, 270


@dataclass(frozen=True)
class Conversation:
    """Two people: the left one talks with the source speech, the right one listens (shadowed)."""

    video: Path
    dub: Path
    talker: list[Placement]
    listener: list[Placement]
    source_speech_s: tuple[float, float]
    dub_speech_start_s: float
    analysis: Analysis


@pytest.fixture(scope="session")
def conversation(tmp_path_factory: pytest.TempPathFactory) -> Conversation:
    folder = tmp_path_factory.mktemp("conversation")
    total_s, speech_start_s, dub_start_s = 5.0, 0.8, 1.4
    frames = round(total_s * FRAME_RATE)
    speech = load_speech(SPEECH_EN)
    source_audio = place_speech(speech, speech_start_s, total_s)
    loudness = envelope(source_audio, FRAME_RATE, frames)
    talker = [
        Placement(130 + index * 0.4, 140, 170, opening=14 * float(loudness[index])) for index in range(frames)
    ]
    listener = [Placement(350, 130 - index * 0.1, 150, shadow=True) for index in range(frames)]
    canvas = background(WIDTH, HEIGHT)

    def render():
        for index in range(frames):
            frame = canvas.copy()
            compose(frame, talker[index])
            compose(frame, listener[index])
            yield frame

    video = write_clip(folder / "conversation.mp4", render(), frame_rate=FRAME_RATE, audio=source_audio)
    dub = write_audio(folder / "dub.m4a", place_speech(load_speech(SPEECH_ES), dub_start_s, total_s))
    return Conversation(
        video=video,
        dub=dub,
        talker=talker,
        listener=listener,
        source_speech_s=(speech_start_s, speech_start_s + len(speech) / 16_000),
        dub_speech_start_s=dub_start_s,
        analysis=analyze(video, dub),
    )


@dataclass(frozen=True)
class Hardship:
    """One face through trouble: plain, hard shadow, darkness, a hand over the mouth, fast blurred motion."""

    video: Path
    placements: list[Placement]
    analysis: Analysis


HARDSHIP_STAGES = ("plain", "shadow", "dark", "covered", "fast")
STAGE_FRAMES = 15


@pytest.fixture(scope="session")
def hardship(tmp_path_factory: pytest.TempPathFactory) -> Hardship:
    folder = tmp_path_factory.mktemp("hardship")
    canvas = background(WIDTH, HEIGHT, seed=3)
    placements = []
    x = 150.0
    for stage in HARDSHIP_STAGES:
        for _ in range(STAGE_FRAMES):
            x += 9.0 if stage == "fast" else 1.5
            placements.append(
                Placement(
                    x,
                    135,
                    150,
                    shadow=stage == "shadow",
                    brightness=0.3 if stage == "dark" else 1.0,
                    cover_mouth=stage == "covered",
                    blur=9 if stage == "fast" else 0,
                )
            )

    def render():
        for placement in placements:
            frame = canvas.copy()
            compose(frame, placement)
            yield frame

    video = write_clip(folder / "hardship.mp4", render(), frame_rate=FRAME_RATE)
    return Hardship(video=video, placements=placements, analysis=analyze(video, None))


@dataclass(frozen=True)
class ThreeShots:
    video: Path
    shots: list[list[int]]


@pytest.fixture(scope="session")
def three_shots(tmp_path_factory: pytest.TempPathFactory) -> ThreeShots:
    """A face on the left, then an empty room, then the face on the right of another room."""
    folder = tmp_path_factory.mktemp("shots")
    shots = [[0, 19], [20, 31], [32, 51]]
    rooms = [background(WIDTH, HEIGHT, seed=seed) for seed in (1, 2, 5)]

    def render():
        for index in range(shots[-1][1] + 1):
            shot = next(number for number, (first, last) in enumerate(shots) if first <= index <= last)
            frame = rooms[shot].copy()
            if shot == 0:
                compose(frame, Placement(140 + index, 135, 150))
            elif shot == 2:
                compose(frame, Placement(330 - index, 140, 160))
            # Camera shake inside each shot: cuts must not be found there.
            yield np.roll(frame, index % 3, axis=1)

    return ThreeShots(video=write_clip(folder / "shots.mp4", render(), frame_rate=FRAME_RATE), shots=shots)
