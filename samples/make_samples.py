"""Rebuild the bundled demo media (needs espeak-ng): a talking-head clip and a Spanish dub track.

The picture is scikit-image's astronaut photo (public domain, NASA) with a slow camera drift, so the clip has
real motion; both voices are espeak-ng speech. Run: .venv/bin/python samples/make_samples.py
"""

from __future__ import annotations

import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from skimage import data, transform

HERE = Path(__file__).parent
SIZE = 384
FPS = 25
SOURCE_TEXT = "Hello, and welcome to Redub. This is the original voice of the video."
DUB_TEXT = "Hola y bienvenidos a Redub. Esta es la nueva voz del video, en otro idioma."


def speak(text: str, voice: str, path: Path) -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text], check=True)
    return path


def frames(count: int) -> list[np.ndarray]:
    photo = data.astronaut().astype(np.float32) / 255
    images = []
    for index in range(count):
        phase = 2 * np.pi * index / count
        shift = transform.AffineTransform(
            scale=1.02 + 0.01 * np.sin(phase), translation=(6 * np.sin(phase) - 5, 4 * np.cos(phase) - 5)
        )
        moved = transform.warp(photo, shift.inverse, mode="edge")
        images.append((transform.resize(moved, (SIZE, SIZE), anti_aliasing=True) * 255).astype(np.uint8))
    return images


def encode_audio_stream(container: av.container.OutputContainer, stream: av.AudioStream, wav: Path) -> None:
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=22050, frame_size=1024)
    written = 0
    with av.open(str(wav)) as source:
        for decoded in [*source.decode(audio=0), None]:
            for frame in resampler.resample(decoded):
                frame.pts = written
                frame.time_base = Fraction(1, 22050)
                written += frame.samples
                container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        source_voice = speak(SOURCE_TEXT, "en-us", Path(work) / "source.wav")
        dub_voice = speak(DUB_TEXT, "es", Path(work) / "dub.wav")
        with av.open(str(source_voice)) as probe:
            seconds = float(probe.duration or 0) / av.time_base
        with av.open(str(HERE / "speaker.mp4"), "w") as container:
            video = container.add_stream("libx264", rate=Fraction(FPS))
            video.width = video.height = SIZE
            video.pix_fmt = "yuv420p"
            video.codec_context.options = {"crf": "26", "preset": "slow"}
            audio = container.add_stream("aac", rate=22050, layout="mono")  # every stream before any packet
            for image in frames(round(seconds * FPS)):
                container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(video.encode(None))
            encode_audio_stream(container, audio, source_voice)
        with av.open(str(HERE / "dub_speech.m4a"), "w", format="mp4") as container:
            encode_audio_stream(container, container.add_stream("aac", rate=22050, layout="mono"), dub_voice)


if __name__ == "__main__":
    main()
