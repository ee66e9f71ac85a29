"""Analysis speed on a 720p clip, on one CPU core, as a ratio to real time (goal: above 1).

`python -m bench.analysis [--seconds S] [--faces N]`. The clip (two people, one talking to real speech, a cut
in the middle) is made first and not timed; then `analyze` runs with every thread pool at one thread and the
process pinned to a single core, with the dub audio, as a job would run it. Wall time decides the exit status;
CPU time is printed too, since other work on a shared machine inflates wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--faces", type=int, default=2, choices=[1, 2])
    args = parser.parse_args()

    import cv2
    import torch

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    torch.set_num_threads(1)
    cv2.setNumThreads(1)

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
    from worker.engine.analysis.analysis import analyze
    from worker.engine.analysis.options import AnalysisOptions

    frame_rate = 25
    frames = round(args.seconds * frame_rate)
    speech = load_speech(SPEECH_EN)
    source_audio = place_speech(speech, 0.5, args.seconds)
    loudness = envelope(source_audio, frame_rate, frames)
    rooms = [background(1280, 720, seed=1), background(1280, 720, seed=2)]

    def render():
        for index in range(frames):
            shot = 0 if index < frames // 2 else 1
            frame = rooms[shot].copy()
            sway = abs(index % 400 - 200)  # back and forth, never a jump
            compose(frame, Placement(420 + sway, 360, 420, opening=14 * float(loudness[index])))
            if args.faces == 2:
                compose(frame, Placement(950, 330 - sway * 0.2, 300, shadow=shot == 1))
            yield frame

    with tempfile.TemporaryDirectory(prefix="redub-bench-") as folder:
        video = write_clip(Path(folder) / "clip.mp4", render(), frame_rate=frame_rate, audio=source_audio)
        dub = write_audio(Path(folder) / "dub.m4a", place_speech(load_speech(SPEECH_ES), 0.3, args.seconds))
        analyze(video, dub)  # warm up: model loading is once per worker process, not per job
        started, cpu_started = time.perf_counter(), time.process_time()
        analysis = analyze(video, dub, AnalysisOptions(landmark_threads=1))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    duration = frames / frame_rate
    ratio = duration / elapsed
    print(
        f"analysis 720p, {args.faces} face(s), {frames} frames ({duration:.1f} s), 1 core: {elapsed:.2f} s "
        f"= {ratio:.2f}x real time ({elapsed / frames * 1000:.1f} ms/frame; goal > 1.00x); "
        f"CPU time {cpu:.2f} s = {duration / cpu:.2f}x (less sensitive to other load on the machine); "
        f"tracks {len(analysis.tracks)}, shots {len(analysis.shots)}, "
        f"detector runs {analysis.detections_run}; "
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    return 0 if ratio > 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
