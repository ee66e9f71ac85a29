"""Dub-audio decoding: a 16 kHz mono copy for the models, and the AAC track of the output.

Both stream: the 16 kHz copy goes to a file that is memory-mapped, and the output track is encoded block by
block as the video advances, so neither grows in memory with the length of the audio.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from worker.engine.errors import INVALID_MEDIA, MEDIA_TOO_LONG, NO_AUDIO_STREAM, OUTPUT_FAILED, EngineError
from worker.engine.probe import AudioInfo, decode_frames, ffmpeg_reason, open_container
from worker.engine.renderers import AUDIO_SAMPLE_RATE

_AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
_AAC_BLOCK = 1024  # samples per AAC frame
_AAC_BIT_RATE_PER_CHANNEL = 96_000


@dataclass
class DecodedAudio:
    samples: np.ndarray  # mono float32 at AUDIO_SAMPLE_RATE, memory-mapped from `path`
    path: Path
    duration_s: float  # exact, from the native samples decoded


def decode_for_models(source: Path, work_dir: Path, max_seconds: float = math.inf) -> DecodedAudio:
    """Decode the whole dub track once to 16 kHz mono float32 on disk and map it.

    The decode stops at `max_seconds` whatever the headers claimed, so a file that lies about its length
    cannot fill the disk.
    """
    destination = work_dir / "audio_16k_mono.f32"
    native_samples = 0
    native_rate = 0
    resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_SAMPLE_RATE)
    with open(destination, "wb") as sink:
        for frame in _decoded_frames(source):
            native_samples += frame.samples
            native_rate = frame.sample_rate
            if native_samples > max_seconds * native_rate:
                raise EngineError(
                    MEDIA_TOO_LONG,
                    f"{source.name}: the audio lasts longer than the limit of {max_seconds:g} s",
                )
            for converted in resampler.resample(frame):
                sink.write(converted.to_ndarray().astype(np.float32, copy=False).tobytes())
        for converted in resampler.resample(None):
            sink.write(converted.to_ndarray().astype(np.float32, copy=False).tobytes())
    if native_samples == 0:
        raise EngineError(INVALID_MEDIA, f"{source.name}: the audio stream holds no samples")
    size = destination.stat().st_size // 4
    samples = np.memmap(destination, dtype=np.float32, mode="r", shape=(size,)) if size else np.zeros(0, "f4")
    return DecodedAudio(samples=samples, path=destination, duration_s=native_samples / native_rate)


def _decoded_frames(source: Path) -> Iterator[av.AudioFrame]:
    with open_container(source) as container:
        if not container.streams.audio:
            raise EngineError(NO_AUDIO_STREAM, f"{source.name} has no audio stream")
        yield from decode_frames(container, container.streams.audio[0], source)


class AudioTrackWriter:
    """Encodes the dub track as AAC: the first `used_s` seconds of it, then silence up to the end."""

    def __init__(
        self, container: av.container.OutputContainer, source: Path, info: AudioInfo, used_s: float
    ) -> None:
        self.rate = info.sample_rate if info.sample_rate in _AAC_RATES else 48000
        self.channels = 1 if info.channels == 1 else 2
        layout = "mono" if self.channels == 1 else "stereo"
        self._stream = container.add_stream("aac", rate=self.rate, layout=layout)
        # Low sample rates cannot carry 96 kb/s a channel; the encoder caps at about 6 bits a sample.
        self._stream.bit_rate = self.channels * min(_AAC_BIT_RATE_PER_CHANNEL, 5 * self.rate)
        self._container = container
        self._chunks = self._pcm(source, layout)
        self._pending = np.zeros((self.channels, 0), np.float32)
        self._source_left = round(used_s * self.rate)  # samples still to take from the dub audio
        self.written = 0  # samples encoded so far

    def write_until(self, seconds: float) -> None:
        """Encode whole AAC blocks up to `seconds` of output (called as the video advances)."""
        target = round(seconds * self.rate)
        while self.written + _AAC_BLOCK <= target:
            self._encode(self._take(_AAC_BLOCK))

    def finish(self, seconds: float) -> None:
        """Encode the rest up to exactly `seconds` and flush the encoder."""
        target = round(seconds * self.rate)
        while self.written < target:
            self._encode(self._take(min(_AAC_BLOCK, target - self.written)))
        self._mux(self._stream.encode(None))

    def _take(self, count: int) -> np.ndarray:
        while self._pending.shape[1] < count and self._source_left > 0:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._source_left = 0
                break
            chunk = chunk[:, : self._source_left]
            self._source_left -= chunk.shape[1]
            self._pending = np.concatenate([self._pending, chunk], axis=1)
        block = self._pending[:, :count]
        self._pending = self._pending[:, count:]
        if block.shape[1] < count:  # the dub audio is used up: silence
            block = np.pad(block, ((0, 0), (0, count - block.shape[1])))
        return block

    def _encode(self, block: np.ndarray) -> None:
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout=self._layout)
        frame.sample_rate = self.rate
        frame.pts = self.written
        self.written += block.shape[1]
        self._mux(self._stream.encode(frame))

    @property
    def _layout(self) -> str:
        return "mono" if self.channels == 1 else "stereo"

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self._container.mux(packets)
        except av.FFmpegError as error:
            raise EngineError(OUTPUT_FAILED, f"writing the audio failed ({ffmpeg_reason(error)})") from error

    def _pcm(self, source: Path, layout: str) -> Iterator[np.ndarray]:
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=self.rate)
        for frame in _decoded_frames(source):
            frame.pts = None  # resample by sample count; container timestamps may have gaps
            for converted in resampler.resample(frame):
                yield converted.to_ndarray()
        for converted in resampler.resample(None):
            yield converted.to_ndarray()
