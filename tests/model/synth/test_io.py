"""write_pair / read_pair: lossless frames, the audio, the truth arrays and the description."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np

from model.synth import SynthPair, read_pair, write_pair
from model.synth.io import read_wav


def test_round_trip(clean_pair: SynthPair, tmp_path: Path) -> None:
    write_pair(clean_pair, tmp_path)
    names = {path.name for path in tmp_path.iterdir()}
    assert {"source.mp4", "dub.wav", "truth.mp4", "truth.npz", "meta.json"} <= names
    again = read_pair(tmp_path)
    for role in ("source", "target"):
        one, two = getattr(clean_pair, role), getattr(again, role)
        assert np.array_equal(one.frames, two.frames)  # lossless
        assert np.abs(one.audio - two.audio).max() < 1e-4
        for name in ("opening", "mouth", "landmarks"):
            assert np.array_equal(getattr(one, name), getattr(two, name))
        assert np.abs(one.masks - two.masks).max() <= 0.5 / 255 + 1e-6
    assert (again.condition, again.seed, again.split) == ("clean", 3, "train")
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["target"]["text"] and meta["target"]["voice"] and meta["scene"]["photo_id"]
    assert meta["size"] == [256, 256] and meta["fps"] == 25.0


def test_videos_carry_their_audio(clean_pair: SynthPair, tmp_path: Path) -> None:
    write_pair(clean_pair, tmp_path)
    for name in ("source.mp4", "truth.mp4"):
        with av.open(str(tmp_path / name)) as container:
            assert container.streams.video[0].codec_context.name == "h264"
            assert container.streams.audio[0].codec_context.name == "aac"
            assert container.streams.audio[0].rate == 16_000
    dub = read_wav(tmp_path / "dub.wav")
    assert len(dub) == len(clean_pair.target.audio)
