"""Four shots of different lengths, fanned out over 2 worker processes, against the longest shot's chain.

`python -m bench.shots [--shot-seconds 1.4 1.6 2.0 4.0] [--segment-frames 17]`. Four synthetic talking clips,
each another person in another scene, are joined into one video with three cuts and planned once (segments
never cross a cut). A renderer that conditions each segment on the one before (motion frames) must render a
shot's segments in a chain, so with enough workers the dub cannot end before the longest shot's chain plus
the assembly. This measures, with the shipped DiT on CPU (one torch thread a process, model loaded before the
clock, `bench.fanout`'s processes): the longest shot's segments rendered one after another by one process
and assembled, and every segment fanned out over 2 processes and assembled. The ratio of the two wall times
is the goal (<= 1.2); the ratio to the chain's rendering alone is printed too.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np


def four_shots(directory: Path, seconds: list[float], size: int) -> tuple[Path, Path]:
    """One video of the shots one after another (source audio) and the dub track, of the same length."""
    from model.synth import make_pair
    from model.synth.io import write_video, write_wav

    pairs = [
        make_pair("clean", 21 + number, "heldout", size=(size, size), seconds=length)
        for number, length in enumerate(seconds)
    ]
    directory.mkdir(parents=True, exist_ok=True)
    video, audio = directory / "source.mp4", directory / "dub.wav"
    frames = np.concatenate([pair.source.frames for pair in pairs])
    source_audio = np.concatenate([pair.source.audio for pair in pairs])
    write_video(video, frames, source_audio, pairs[0].source.frame_rate)
    write_wav(audio, np.concatenate([pair.target.audio for pair in pairs]))
    return video, audio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--shot-seconds", type=float, nargs=4, default=[1.4, 1.6, 2.0, 4.0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--segment-frames", type=int, default=17)
    parser.add_argument("--model", default="redub-mini-synth")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from bench.fanout import run
    from worker.engine.analysis.options import AnalysisOptions, SpeakerPin
    from worker.engine.fanout import plan_job
    from worker.engine.pipeline import DubOptions

    with tempfile.TemporaryDirectory(prefix="redub-bench-shots-") as directory:
        work = Path(directory)
        video, audio = four_shots(work / "clip", args.shot_seconds, args.size)
        inputs = {"video": video, "audio": audio, "analysis": work / "analysis.npz"}
        # Each shot's person pinned (one face track a shot, in order): speaking detection alone leaves some
        # of the synthetic speakers undubbed, and every shot must render for the measure to mean anything.
        pins = tuple(SpeakerPin(track_id=track) for track in range(4))
        options = DubOptions(
            renderer="dit",
            model=args.model,
            segment_frames=args.segment_frames,
            analysis=AnalysisOptions(speakers=pins),
        )
        plan = plan_job(video, audio, options, inputs["analysis"])
        shots: dict[int, list[int]] = {}
        for index in plan.to_render:
            shots.setdefault(plan.segments[index].shot, []).append(index)
        longest = max(shots.values(), key=len)
        print(
            f"{plan.length.output_frames} frames, {len(shots)} shots with segments to render "
            f"({', '.join(str(len(indices)) for indices in shots.values())} segments of up to "
            f"{args.segment_frames} frames); cpus available: {len(os.sched_getaffinity(0))}"
        )
        chain_plan = dataclasses.replace(plan, to_render=longest)
        chain, chain_render = run(1, chain_plan, inputs, args.model, work)
        fanned, fanned_render = run(2, plan, inputs, args.model, work)
    print(f"longest shot's chain, 1 process: {chain:7.1f} s wall ({chain_render:.1f} s rendering)")
    print(f"every segment, 2 processes:      {fanned:7.1f} s wall ({fanned_render:.1f} s rendering, summed)")
    ratio = fanned / chain
    # The same walls in units of each run's own mean render time per segment: what is left of the ratio
    # when two processes render as fast as one alone (a machine with two idle cores).
    chain_units = chain / (chain_render / len(longest))
    fanned_units = fanned / (fanned_render / len(plan.to_render))
    print(
        f"in segment-times: chain {chain_units:.1f}, fan-out {fanned_units:.1f}, "
        f"ratio {fanned_units / chain_units:.2f}"
    )
    print(
        f"fan-out / longest chain: {ratio:.2f} (goal <= 1.2); "
        f"/ the chain's rendering alone: {fanned / chain_render:.2f}"
    )
    return 0 if ratio <= 1.2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
