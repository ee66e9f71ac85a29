"""A phone video stored sideways (display rotation): analysis and masks are in upright display pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.worker.engine.analysis.footage import (
    SPEECH_EN,
    Placement,
    background,
    compose,
    envelope,
    load_speech,
    mouth_point,
    place_speech,
    write_clip,
)
from worker.engine.analysis.analysis import analyze

FRAME_RATE = 25


def test_masks_come_upright_for_a_rotated_video(tmp_path: Path) -> None:
    total_s = 2.4
    frames = round(total_s * FRAME_RATE)
    audio = place_speech(load_speech(SPEECH_EN), 0.2, total_s)
    loudness = envelope(audio, FRAME_RATE, frames)
    room = background(270, 480, seed=7)  # upright: portrait
    placements = [Placement(135, 200, 170, opening=14 * float(loudness[index])) for index in range(frames)]

    def coded():
        for placement in placements:
            upright = room.copy()
            compose(upright, placement)
            # Stored turned a quarter clockwise; the player turns it back by 90 degrees counter-clockwise.
            yield np.rot90(upright, k=-1)

    video = write_clip(tmp_path / "phone.mp4", coded(), frame_rate=FRAME_RATE, audio=audio, rotation=90)
    analysis = analyze(video, None)
    assert analysis.info.rotation == 90
    (track,) = analysis.tracks
    assert abs(track.pose[:, 2]).max() < 15  # upright faces: no roll
    assert analysis.dubbed_track_ids == [track.id]
    shown = np.arange(20, 30)
    masks = analysis.segment_masks(shown, output_start=20)
    assert masks is not None and masks.shape == (10, 480, 270)
    for position, frame in enumerate(shown):
        x, y = mouth_point(placements[frame])
        assert masks[position, round(y), round(x)] > 0.95
