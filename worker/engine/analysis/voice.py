"""Voice activity of an audio track with Silero VAD (its model ships inside the silero-vad wheel).

Audio is decoded, resampled to 16 kHz mono and fed to the model in 32 ms chunks as it streams in, so memory
holds one probability per chunk, never the waveform.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from worker.engine.errors import INVALID_MEDIA, NO_AUDIO_STREAM, EngineError
from worker.engine.probe import decode_frames, ffmpeg_reason, open_container

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
CHUNK = 512  # samples per model call: 32 ms
CHUNK_SECONDS = CHUNK / SAMPLE_RATE
_START_THRESHOLD = 0.5
_END_THRESHOLD = 0.35
_MIN_SPEECH_S = 0.2
_MIN_SILENCE_S = 0.15
_PAD_S = 0.05


@dataclass(frozen=True)
class VoiceActivity:
    probabilities: np.ndarray  # (chunks,) float32, one per CHUNK_SECONDS
    segments: tuple[tuple[float, float], ...]  # speech (start_s, end_s)

    @property
    def duration_s(self) -> float:
        return len(self.probabilities) * CHUNK_SECONDS

    def frames_with_speech(self, frame_count: int, frame_rate: float, pad_s: float = 0.0) -> np.ndarray:
        """(frame_count,) bool: does speech (widened by pad_s each side) overlap each frame's time?"""
        flags = np.zeros(frame_count, dtype=bool)
        for start, end in self.segments:
            first = max(0, int(np.floor((start - pad_s) * frame_rate)))
            last = min(frame_count - 1, int(np.ceil((end + pad_s) * frame_rate)) - 1)
            if last >= first:
                flags[first : last + 1] = True
        return flags

    def speech_at(self, times_s: np.ndarray, frame_duration_s: float, pad_s: float = 0.0) -> np.ndarray:
        """(len(times_s),) bool: does speech (widened by pad_s) overlap each frame starting at times_s?"""
        flags = np.zeros(len(times_s), dtype=bool)
        for start, end in self.segments:
            flags |= (times_s + frame_duration_s > start - pad_s) & (times_s < end + pad_s)
        return flags

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration_s": round(self.duration_s, 3),
            "speech_s": round(sum(end - start for start, end in self.segments), 3),
            "segments": [[round(start, 3), round(end, 3)] for start, end in self.segments],
        }


@lru_cache(maxsize=1)
def _model() -> torch.jit.ScriptModule:
    from silero_vad import load_silero_vad

    return load_silero_vad()


def detect_voice(path: Path, *, required: bool = True) -> VoiceActivity | None:
    """Voice activity of the first audio stream of a file; None if it has none and `required` is False."""
    with open_container(path) as container:
        if not container.streams.audio:
            if required:
                raise EngineError(NO_AUDIO_STREAM, f"{path.name} has no audio stream")
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        model = _model()
        model.reset_states()
        pending = np.zeros(0, dtype=np.float32)
        probabilities: list[float] = []
        try:
            with torch.inference_mode():
                for frame in decode_frames(container, stream, path):
                    for resampled in resampler.resample(frame):
                        pending = np.concatenate([pending, resampled.to_ndarray().reshape(-1)])
                        pending = _feed(model, pending, probabilities)
                for resampled in resampler.resample(None):
                    pending = np.concatenate([pending, resampled.to_ndarray().reshape(-1)])
                pending = _feed(model, pending, probabilities)
                if len(pending):
                    tail = np.zeros(CHUNK, dtype=np.float32)
                    tail[: len(pending)] = pending
                    _feed(model, tail, probabilities)
        except av.FFmpegError as error:
            raise EngineError(
                INVALID_MEDIA, f"{path.name}: the audio cannot be decoded ({ffmpeg_reason(error)})"
            ) from error
    scores = np.asarray(probabilities, dtype=np.float32)
    segments = speech_segments(scores)
    logger.info("voice activity", extra={"file": path.name, "chunks": len(scores), "segments": len(segments)})
    return VoiceActivity(scores, segments)


def _feed(model: torch.jit.ScriptModule, pending: np.ndarray, probabilities: list[float]) -> np.ndarray:
    whole = len(pending) // CHUNK * CHUNK
    for start in range(0, whole, CHUNK):
        chunk = torch.from_numpy(np.ascontiguousarray(pending[start : start + CHUNK]))[None]
        probabilities.append(float(model(chunk, SAMPLE_RATE)))
    return pending[whole:]


def speech_segments(probabilities: np.ndarray) -> tuple[tuple[float, float], ...]:
    """Speech intervals from chunk probabilities: hysteresis, then drop blips and bridge short pauses."""
    raw: list[list[float]] = []
    speaking = False
    for index, probability in enumerate(probabilities):
        time = index * CHUNK_SECONDS
        if not speaking and probability >= _START_THRESHOLD:
            speaking = True
            raw.append([time, time + CHUNK_SECONDS])
        elif speaking and probability >= _END_THRESHOLD:
            raw[-1][1] = time + CHUNK_SECONDS
        elif speaking:
            speaking = False
    merged: list[list[float]] = []
    for start, end in raw:
        if merged and start - merged[-1][1] < _MIN_SILENCE_S:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    total = len(probabilities) * CHUNK_SECONDS
    return tuple(
        (max(0.0, start - _PAD_S), min(total, end + _PAD_S))
        for start, end in merged
        if end - start >= _MIN_SPEECH_S
    )
