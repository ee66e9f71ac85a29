"""Real media for tests, encoded with PyAV: every clip is decodable by any player, not a fake."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def pattern_frame(index: int, width: int, height: int) -> np.ndarray:
    """A frame that differs from every other: gradients, a moving box and fine noise (exercises the codec)."""
    rows = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    columns = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    image = np.empty((height, width, 3), np.float32)
    image[..., 0] = rows
    image[..., 1] = columns
    image[..., 2] = (index * 9) % 256
    box = max(4, width // 6)
    left = (index * 3) % max(1, width - box)
    image[height // 3 : height // 3 + box, left : left + box] = 255
    noise = np.random.default_rng(index).integers(0, 24, size=(height, width, 1))
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def write_video(
    path: Path,
    *,
    codec: str = "libx264",
    width: int = 96,
    height: int = 64,
    frame_rate: Fraction | int = 25,
    frames: int = 30,
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
    frame_times: list[float] | None = None,
    audio_seconds: float | None = None,
    audio_codec: str = "aac",
    audio_rate: int = 44100,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode a clip; `frame_times` (seconds) makes it variable-frame-rate."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(frame_rate))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if options:
            stream.codec_context.options = options
        if frame_times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        audio_stream = None
        if audio_seconds is not None:
            layout = "stereo"
            audio_stream = container.add_stream(audio_codec, rate=audio_rate, layout=layout)
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern_frame(index, width, height), format="rgb24")
            if frame_times is not None:
                frame.pts = round(frame_times[index] * 1000)
                frame.time_base = Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio_stream is not None and audio_seconds is not None:
            _write_tone(container, audio_stream, audio_seconds, audio_rate, channels=2)
    return path


def write_gif(path: Path, delays_cs: list[int], *, width: int = 96, height: int = 64) -> Path:
    """An animated GIF (no audio), one frame per delay (in hundredths of a second, GIF's own unit)."""
    from PIL import Image

    pictures = [Image.fromarray(pattern_frame(index, width, height)) for index in range(len(delays_cs))]
    pictures[0].save(
        path,
        save_all=True,
        append_images=pictures[1:],
        duration=[delay * 10 for delay in delays_cs],
        loop=0,
        optimize=False,
    )
    return path


def write_audio(
    path: Path, seconds: float, *, codec: str = "pcm_s16le", rate: int = 16000, channels: int = 1
) -> Path:
    """A tone whose pitch changes every 100 ms, so misplaced samples are detectable."""
    with av.open(str(path), "w") as container:
        layout = "mono" if channels == 1 else "stereo"
        stream = container.add_stream(codec, rate=rate, layout=layout)
        _write_tone(container, stream, seconds, rate, channels)
    return path


def _write_tone(
    container: av.container.OutputContainer, stream: av.AudioStream, seconds: float, rate: int, channels: int
) -> None:
    total = round(seconds * rate)
    time = np.arange(total) / rate
    pitch = 220 + 110 * (np.floor(time * 10) % 5)
    wave = (0.3 * np.sin(2 * np.pi * pitch * time)).astype(np.float32)
    samples = np.repeat(wave[None, :], channels, axis=0)
    layout = "mono" if channels == 1 else "stereo"
    block = 1024
    for start in range(0, total, block):
        chunk = np.ascontiguousarray(samples[:, start : start + block])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def decode_planes(path: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every frame's yuv420p planes in presentation order (for exact pixel comparisons)."""
    planes = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.format.name not in ("yuv420p", "yuvj420p"):
                frame = frame.reformat(format="yuv420p")
            arrays = []
            for plane in frame.planes:
                rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
                arrays.append(rows[:, : plane.width].copy())
            planes.append((arrays[0], arrays[1], arrays[2]))
    return planes


class FeatheredBox:
    """A mask source: 1 inside a box, falling linearly to 0 over `band` pixels on every side of it."""

    def __init__(self, width: int, height: int, box: tuple[int, int, int, int], band: int) -> None:
        top, bottom, left, right = box  # the outer edge of the feather
        rows = np.arange(height, dtype=np.float32)[:, None]
        columns = np.arange(width, dtype=np.float32)[None, :]
        # Distance inside the box's edge, in pixels (0 on its outermost row/column).
        inside = np.minimum(
            np.minimum(rows - top, bottom - 1 - rows), np.minimum(columns - left, right - 1 - columns)
        )
        self.mask = np.clip((inside + 1) / (band + 1), 0, 1).astype(np.float32)

    def segment_masks(self, source_indices: np.ndarray, output_start: int) -> np.ndarray:
        return np.repeat(self.mask[None], len(source_indices), axis=0)


def luma_weights(
    source: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    output: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    colour_luma: float,
    mask: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For a renderer that paints one colour: the expected luma of every frame, source + mask * (colour -
    source), and per feathered pixel (0 < mask < 1) the weight the output gave the colour divided by the mask
    (1 when the edge is applied once; pixels whose luma is near the colour's tell nothing and are left out).
    """
    expected, weights = [], []
    band = (mask > 0) & (mask < 1)
    for before, after in zip(source, output, strict=True):
        luma = before[0].astype(np.float64)
        expected.append(luma + mask * (colour_luma - luma))
        telling = band & (np.abs(colour_luma - luma) > 20)
        weights.append((after[0][telling] - luma[telling]) / (colour_luma - luma[telling]) / mask[telling])
    return np.stack(expected), np.concatenate(weights)
