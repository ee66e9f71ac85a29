"""Footage for analysis tests: a real face photo (skimage's astronaut) composited into clips (PyAV).

The face can move, be shadowed, darkened or partly covered, and "talk": its jaw is warped open by a speech
envelope with a dark mouth drawn in, so lip motion follows real speech (tests/data/*.flac, from espeak-ng).

The speech files were made once (espeak-ng 1.51) and stored as 16 kHz mono FLAC:
    espeak-ng -v en-us -s 160 -w en.wav "The weather is lovely today, shall we walk to the harbour?"
    espeak-ng -v es -s 160 -w es.wav "Buenos días, me gustaría un café con leche, por favor."
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np
import skimage.data

DATA = Path(__file__).resolve().parents[3] / "data"
SPEECH_EN = DATA / "speech_en.flac"
SPEECH_ES = DATA / "speech_es.flac"
AUDIO_RATE = 16_000

# The astronaut photo's head (rows, columns) and where her mouth is inside that crop.
_HEAD = (slice(40, 232), slice(130, 322))
_MOUTH_X, _MOUTH_Y = 223 - 130, 146 - 40


@cache
def _astronaut() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.astronaut())


def head(opening: float = 0.0) -> np.ndarray:
    """The 192x192 head crop; `opening` (pixels at photo scale) opens the jaw and shows a dark mouth."""
    image = _astronaut()[_HEAD].copy()
    if opening <= 0:
        return image
    height, width = image.shape[:2]
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    across = np.clip(1 - np.abs(columns - _MOUTH_X) / 50, 0, 1) ** 0.7
    below = np.where(rows < _MOUTH_Y, 0, np.clip((_MOUTH_Y + 59 - rows) / 25, 0, 1))
    source_rows = (rows - opening * across * below).astype(np.float32)
    moved = np.ascontiguousarray(
        cv2.remap(image, columns, source_rows, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    )
    centre = (_MOUTH_X, _MOUTH_Y + int(opening * 0.45))
    cv2.ellipse(moved, centre, (19, max(1, int(opening * 0.5))), 0, 0, 360, (70, 25, 30), -1)
    return moved


@dataclass(frozen=True)
class Placement:
    """One face in one frame: where its head's centre is and how big, plus what happens to it."""

    x: float
    y: float
    size: int  # head crop side in pixels; the face is about half of it
    opening: float = 0.0
    brightness: float = 1.0
    shadow: bool = False  # a hard shadow over one side of the face
    cover_mouth: bool = False  # a hand-coloured block over the mouth
    blur: int = 0  # length in pixels of a horizontal motion blur


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A textured, non-face background: a blurred colour field with noise."""
    generator = np.random.default_rng(seed)
    small = generator.integers(40, 200, size=(6, 10, 3)).astype(np.uint8)
    field = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = generator.integers(-8, 8, size=(height, width, 3))
    return np.clip(field.astype(np.int32) + noise, 0, 255).astype(np.uint8)


def compose(canvas: np.ndarray, placement: Placement) -> None:
    """Paste a head into the canvas (in place), clipped at the borders."""
    face = cv2.resize(head(placement.opening), (placement.size, placement.size), interpolation=cv2.INTER_AREA)
    face = face.astype(np.float32) * placement.brightness
    if placement.shadow:
        face[:, : placement.size // 2] *= 0.35
    if placement.cover_mouth:
        top = int(placement.size * 0.5)
        face[top : top + placement.size // 4, int(placement.size * 0.3) : int(placement.size * 0.7)] = (
            200,
            150,
            120,
        )
    if placement.blur > 1:
        kernel = np.full((1, placement.blur), 1.0 / placement.blur, dtype=np.float32)
        face = cv2.filter2D(face, -1, kernel, borderType=cv2.BORDER_REFLECT)
    face_pixels = np.clip(face, 0, 255).astype(np.uint8)
    height, width = canvas.shape[:2]
    x0, y0 = round(placement.x - placement.size / 2), round(placement.y - placement.size / 2)
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(width, x0 + placement.size), min(height, y0 + placement.size)
    if cx1 > cx0 and cy1 > cy0:
        canvas[cy0:cy1, cx0:cx1] = face_pixels[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]


def mouth_point(placement: Placement) -> tuple[float, float]:
    """Where the mouth's centre lands in the frame."""
    scale = placement.size / 192
    return (
        placement.x - placement.size / 2 + _MOUTH_X * scale,
        placement.y - placement.size / 2 + (_MOUTH_Y + placement.opening * 0.45) * scale,
    )


def load_speech(path: Path) -> np.ndarray:
    """Mono float32 samples at AUDIO_RATE."""
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        chunks = [
            resampled.to_ndarray().reshape(-1)
            for frame in container.decode(audio=0)
            for resampled in resampler.resample(frame)
        ]
    return np.concatenate(chunks)


def envelope(samples: np.ndarray, frame_rate: float, frames: int) -> np.ndarray:
    """(frames,) loudness in [0, 1] per video frame: drives the synthetic jaw."""
    per_frame = AUDIO_RATE / frame_rate
    values = np.zeros(frames, dtype=np.float32)
    for index in range(frames):
        chunk = samples[int(index * per_frame) : int((index + 1) * per_frame)]
        values[index] = float(np.sqrt(np.mean(chunk**2))) if len(chunk) else 0.0
    peak = float(values.max())
    return values / peak if peak > 0 else values


def place_speech(speech: np.ndarray, start_s: float, total_s: float) -> np.ndarray:
    """A track of `total_s` seconds, silent except for `speech` starting at `start_s`."""
    track = np.zeros(round(total_s * AUDIO_RATE), dtype=np.float32)
    start = round(start_s * AUDIO_RATE)
    piece = speech[: max(0, len(track) - start)]
    track[start : start + len(piece)] = piece
    return track


def write_clip(
    path: Path,
    frames: Iterable[np.ndarray],
    *,
    frame_rate: int = 25,
    audio: np.ndarray | None = None,
    rotation: int = 0,
) -> Path:
    """Encode RGB frames (H.264, yuv420p) and optional mono audio (AAC) into an mp4."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(frame_rate))
        stream.pix_fmt = "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast", "crf": "18"}
        if rotation:
            stream.set_display_rotation(rotation)
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        first = True
        for pixels in frames:
            if first:
                stream.height, stream.width = pixels.shape[:2]
                first = False
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        if audio_stream is not None and audio is not None:
            write_audio_stream(container, audio_stream, audio)
    return path


def write_audio(path: Path, samples: np.ndarray) -> Path:
    """A mono audio file (format from the suffix: .m4a gives AAC, .flac FLAC, .wav PCM)."""
    codec = {".m4a": "aac", ".flac": "flac", ".wav": "pcm_s16le"}[path.suffix]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=AUDIO_RATE, layout="mono")
        assert isinstance(stream, av.AudioStream)
        write_audio_stream(container, stream, samples)
    return path


def write_audio_stream(
    container: av.container.OutputContainer, stream: av.AudioStream, samples: np.ndarray
) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)[None]
    frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    frame.sample_rate = AUDIO_RATE
    for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
