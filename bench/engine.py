"""Engine benchmark: `redub dub --renderer passthrough` against a plain PyAV decode + x264 encode floor.

Prints, for each clip length, the wall time of both in the same run and their ratio (goal <= 1.3), and the
peak RSS of a dub of the short and the long clip, each in a fresh process (goal: flat, within 10%).
Usage: python -m bench.engine [--seconds 60 600] [--size 1280x720] [--preset veryfast]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess  # nosec B404
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FPS = 25


def make_clip(path: Path, seconds: float, width: int, height: int) -> Path:
    """A 720p-style test clip: a few dozen distinct noisy frames cycled, encoded fast, with stereo AAC."""
    rng = np.random.default_rng(0)
    base = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
    distinct = [
        np.clip(base + rng.integers(0, 40, (height, width, 3)), 0, 255).astype(np.uint8) for _ in range(24)
    ]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.options = {"preset": "ultrafast", "crf": "23"}
        audio = container.add_stream("aac", rate=48000, layout="stereo")
        frames = round(seconds * FPS)
        samples_per_frame = 48000 // FPS
        for index in range(frames):
            image = av.VideoFrame.from_ndarray(distinct[index % len(distinct)], format="rgb24")
            container.mux(video.encode(image))
            tone = np.sin(np.arange(samples_per_frame) * 0.05 + index).astype(np.float32) * 0.2
            sound = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            sound.sample_rate, sound.pts, sound.time_base = (
                48000,
                index * samples_per_frame,
                Fraction(1, 48000),
            )
            container.mux(audio.encode(sound))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return path


def floor(source: Path, destination: Path, preset: str, crf: int) -> dict[str, float]:
    """Plain PyAV: decode every frame and encode it with x264 at the same settings; wall and CPU seconds."""
    started, cpu_started = time.perf_counter(), time.process_time()
    with av.open(str(source)) as reader, av.open(str(destination), "w") as writer:
        stream = reader.streams.video[0]
        stream.thread_type = "AUTO"
        encoder = writer.add_stream("libx264", rate=stream.average_rate or FPS)
        encoder.width, encoder.height, encoder.pix_fmt = stream.width, stream.height, "yuv420p"
        encoder.codec_context.options = {"preset": preset, "crf": str(crf)}
        time_base = stream.time_base or Fraction(1, 90000)
        encoder.time_base = encoder.codec_context.time_base = time_base
        for frame in reader.decode(stream):
            # A decoded frame carries its source frame type, which x264 would obey and so skip its own
            # frame-type decisions: a real transcode (and the engine) lets the encoder choose.
            frame.pict_type = av.video.frame.PictureType.NONE
            writer.mux(encoder.encode(frame))
        writer.mux(encoder.encode(None))
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started}


def dub_in_child(video: Path, audio: Path, output: Path, preset: str, crf: int) -> dict[str, float]:
    """Run the dub in a fresh process: its wall and CPU time (all threads) and its own peak RSS."""
    command = [
        sys.executable,
        "-m",
        "bench.engine",
        "--child",
        str(video),
        str(audio),
        str(output),
        preset,
        str(crf),
    ]
    # Our own argv (sys.executable -m ...), no shell (B603).
    result = subprocess.run(command, capture_output=True, text=True, check=True)  # nosec B603
    facts: dict[str, float] = json.loads(result.stdout)
    return facts


def child(video: str, audio: str, output: str, preset: str, crf: str) -> None:
    # Timed from inside the process so interpreter start-up is not counted against the engine.
    started, cpu_started = time.perf_counter(), time.process_time()
    from worker.engine.pipeline import DubOptions, dub

    dub(Path(video), Path(audio), Path(output), DubOptions(preset=preset, crf=int(crf), sync_mode="cut_off"))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    facts = {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }
    print(json.dumps(facts))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:7])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, nargs=2, default=[60.0, 600.0])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--crf", type=int, default=18)
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.split("x"))
    results = []
    with tempfile.TemporaryDirectory(prefix="redub-bench-") as work:
        for seconds in args.seconds:
            clip = make_clip(Path(work) / f"clip_{seconds:g}s.mp4", seconds, width, height)
            base = floor(clip, Path(work) / "floor.mp4", args.preset, args.crf)
            dubbed = dub_in_child(clip, clip, Path(work) / "dub.mp4", args.preset, args.crf)
            results.append(
                {
                    "clip_seconds": seconds,
                    "size": args.size,
                    "preset": args.preset,
                    "floor_s": round(base["seconds"], 2),
                    "dub_s": round(dubbed["seconds"], 2),
                    "ratio_to_floor": round(dubbed["seconds"] / base["seconds"], 3),
                    "cpu_ratio_to_floor": round(dubbed["cpu_seconds"] / base["cpu_seconds"], 3),
                    "peak_rss_mib": dubbed["peak_rss_mib"],
                }
            )
            print(json.dumps(results[-1]), flush=True)
    short, long = results[0], results[-1]
    print(
        json.dumps(
            {
                "peak_rss_long_over_short": round(long["peak_rss_mib"] / short["peak_rss_mib"], 3),
                "worst_ratio_to_floor": max(result["ratio_to_floor"] for result in results),
                "worst_cpu_ratio_to_floor": max(result["cpu_ratio_to_floor"] for result in results),
            }
        )
    )


if __name__ == "__main__":
    main()
