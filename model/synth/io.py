"""Pairs on disk: lossless video with sound, the dub audio, the ground truth arrays and a description.

A pair's folder holds:

- ``source.mp4``: the source frames, H.264 lossless in RGB (libx264rgb, qp 0: decodes to the exact pixels),
  with utterance A as AAC; ``source.wav``: utterance A, 16 kHz mono PCM (the exact samples, for read_pair);
- ``dub.wav``: the dub audio (utterance B), 16 kHz mono 16-bit PCM;
- ``truth.mp4``: the target frames (what a perfect dub gives), lossless, with the dub audio as AAC;
- ``truth.npz``: ``{source,target}_{opening,mouth,landmarks,masks}`` (masks as uint8, x255) and, where the
  condition has them, ``{source,target}_{occluder,listener}`` (bool);
- ``meta.json``: condition, seed, split, size, fps, texts, languages, voices, photo, scene details.
"""

from __future__ import annotations

import json
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from model.synth.data import SAMPLE_RATE, SynthClip, SynthPair
from model.synth.visemes import MOUTH_PARAMETERS

_ARRAYS = ("opening", "mouth", "landmarks", "masks", "occluder", "listener")


def write_wav(path: Path, audio: np.ndarray) -> None:
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(SAMPLE_RATE)
        file.writeframes(pcm.tobytes())


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as file:
        if file.getnchannels() != 1 or file.getsampwidth() != 2 or file.getframerate() != SAMPLE_RATE:
            raise ValueError(f"{path.name}: expected 16 kHz mono 16-bit PCM")
        pcm = np.frombuffer(file.readframes(file.getnframes()), dtype="<i2")
    return (pcm.astype(np.float32) / 32767.0).astype(np.float32)


def write_video(path: Path, frames: np.ndarray, audio: np.ndarray, frame_rate: float) -> None:
    """Lossless RGB H.264 (exact pixels) + AAC audio in an MP4."""
    height, width = frames.shape[1:3]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264rgb", rate=Fraction(frame_rate).limit_denominator(1001))
        video.width, video.height = width, height
        video.pix_fmt = "rgb24"
        video.codec_context.options = {"qp": "0", "preset": "ultrafast"}
        sound = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        for frame in frames:
            container.mux(
                video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24"))
            )
        container.mux(video.encode(None))
        block = 1024
        for start in range(0, len(audio), block):
            chunk = np.ascontiguousarray(audio[start : start + block], dtype=np.float32)[None, :]
            piece = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            piece.sample_rate = SAMPLE_RATE
            piece.pts = start
            piece.time_base = Fraction(1, SAMPLE_RATE)
            container.mux(sound.encode(piece))
        container.mux(sound.encode(None))


def read_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return np.stack(frames)


def write_pair(pair: SynthPair, directory: Path) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_video(directory / "source.mp4", pair.source.frames, pair.source.audio, pair.source.frame_rate)
    write_video(directory / "truth.mp4", pair.target.frames, pair.target.audio, pair.target.frame_rate)
    write_wav(directory / "source.wav", pair.source.audio)
    write_wav(directory / "dub.wav", pair.target.audio)
    arrays: dict[str, np.ndarray] = {}
    for role, clip in (("source", pair.source), ("target", pair.target)):
        for name in _ARRAYS:
            value = getattr(clip, name)
            if value is None:
                continue
            arrays[f"{role}_{name}"] = np.round(value * 255).astype(np.uint8) if name == "masks" else value
    np.savez_compressed(directory / "truth.npz", allow_pickle=False, **arrays)
    meta = dict(pair.meta or {})
    meta.update(
        condition=pair.condition,
        seed=pair.seed,
        split=pair.split,
        fps=pair.target.frame_rate,
        size=list(pair.target.frames.shape[1:3]),
        mouth_parameters=list(MOUTH_PARAMETERS),
    )
    (directory / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


def read_pair(directory: Path) -> SynthPair:
    directory = Path(directory)
    meta = json.loads((directory / "meta.json").read_text())
    with np.load(directory / "truth.npz") as stored:
        arrays = {name: stored[name] for name in stored.files}
    clips = {}
    for role, video, audio in (("source", "source.mp4", "source.wav"), ("target", "truth.mp4", "dub.wav")):

        def part(name: str, role: str = role) -> np.ndarray | None:
            return arrays.get(f"{role}_{name}")

        masks = part("masks")
        assert masks is not None
        clips[role] = SynthClip(
            frames=read_frames(directory / video),
            audio=read_wav(directory / audio),
            frame_rate=float(meta["fps"]),
            opening=part("opening"),  # type: ignore[arg-type]
            mouth=part("mouth"),  # type: ignore[arg-type]
            landmarks=part("landmarks"),  # type: ignore[arg-type]
            masks=masks.astype(np.float32) / 255.0,
            occluder=part("occluder"),
            listener=part("listener"),
        )
    return SynthPair(
        meta["condition"], int(meta["seed"]), meta["split"], clips["source"], clips["target"], meta
    )
