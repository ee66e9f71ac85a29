"""Fan-out benchmark: one dub rendered by 2 worker processes against 1, as a ratio in one run (goal >= 1.7).

`python -m bench.fanout [--seconds 4] [--size 256] [--segment-frames 17] [--model redub-mini-synth]`. A
synthetic talking clip is made and planned once (probe, analysis, segments; not part of the ratio, it is the
same work either way). Then, for 1 and for 2 processes, each with one torch thread and the model loaded before
the clock starts (a worker loads it once per process): every segment is rendered to a patch file by whichever
process is free, and the output is assembled once. Wall time from the first segment to the assembled MP4.
The renderer is the shipped DiT on CPU: the default model, passthrough, has no segment to fan out.
This is the engine's fan-out without the queue: Celery, Redis and object storage transfers are not timed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

_STATE: dict[str, Any] = {}


def _start_worker(video: str, audio: str, analysis: str, model: str, ready: Barrier) -> None:
    """One worker process: one thread, the model and the inputs loaded once, then wait for the clock."""
    import torch

    torch.set_num_threads(1)
    from worker.engine.analysis.storage import load_analysis
    from worker.engine.audio_io import decode_for_models
    from worker.engine.probe import probe_video
    from worker.engine.renderers import create_renderer

    work = Path(tempfile.mkdtemp(prefix="redub-bench-worker-"))
    _STATE.update(
        video=Path(video),
        info=probe_video(Path(video)),
        samples=decode_for_models(Path(audio), work).samples,
        analysis=load_analysis(Path(analysis)),
        renderer=create_renderer("dit", model),
    )
    ready.wait()


def _render(job: tuple[dict[str, Any], int, str]) -> float:
    from worker.engine.fanout import JobPlan, render_patch

    plan_json, index, destination = job
    plan = JobPlan.from_json(plan_json, _STATE["info"])
    started = time.perf_counter()
    patch = render_patch(
        _STATE["video"],
        _STATE["info"],
        _STATE["samples"],
        plan.length,
        plan.segments[index],
        _STATE["renderer"],
        _STATE["analysis"],
    )
    patch.save(Path(destination))
    return time.perf_counter() - started


def run(processes: int, plan: Any, inputs: dict[str, Path], model: str, work: Path) -> tuple[float, float]:
    """(wall seconds to render every segment and assemble, seconds of rendering summed over processes)."""
    from worker.engine.fanout import SegmentPatch, assemble
    from worker.engine.pipeline import DubOptions
    from worker.engine.segments import Segment

    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(processes + 1)
    folder = work / f"patches-{processes}"
    folder.mkdir()
    arguments = (str(inputs["video"]), str(inputs["audio"]), str(inputs["analysis"]), model, ready)
    with context.Pool(processes, initializer=_start_worker, initargs=arguments) as pool:
        ready.wait()  # every process has its model: the clock starts
        started = time.perf_counter()
        jobs = [(plan.to_json(), index, str(folder / f"{index}.npz")) for index in plan.to_render]
        render_seconds = sum(pool.imap_unordered(_render, jobs))

        def load(segment: Segment) -> SegmentPatch | None:
            path = folder / f"{segment.index}.npz"
            return SegmentPatch.load(path) if path.exists() else None

        options = DubOptions(renderer="dit", model=model, preset="veryfast")
        assemble(inputs["video"], inputs["audio"], work / f"out-{processes}.mp4", options, plan, load)
        return time.perf_counter() - started, render_seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--segment-frames", type=int, default=17)
    parser.add_argument("--model", default="redub-mini-synth")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from model.synth import make_pair, write_pair
    from worker.engine.fanout import plan_job
    from worker.engine.pipeline import DubOptions

    with tempfile.TemporaryDirectory(prefix="redub-bench-fanout-") as directory:
        work = Path(directory)
        pair = make_pair("clean", 11, "heldout", size=(args.size, args.size), seconds=args.seconds)
        write_pair(pair, work / "clip")
        inputs = {
            "video": work / "clip" / "source.mp4",
            "audio": work / "clip" / "dub.wav",
            "analysis": work / "analysis.npz",
        }
        options = DubOptions(renderer="dit", model=args.model, segment_frames=args.segment_frames)
        plan = plan_job(inputs["video"], inputs["audio"], options, inputs["analysis"])
        print(
            f"clip {args.size}x{args.size}, {plan.length.output_frames} frames; "
            f"{len(plan.segments)} segments of up to {args.segment_frames} frames, {len(plan.to_render)} to "
            f"render; cpus available: {len(os.sched_getaffinity(0))}"
        )
        one, one_render = run(1, plan, inputs, args.model, work)
        two, two_render = run(2, plan, inputs, args.model, work)
    ratio = one / two
    print(f"1 process:   {one:7.1f} s wall ({one_render:.1f} s rendering)")
    print(f"2 processes: {two:7.1f} s wall ({two_render:.1f} s rendering, summed over both)")
    print(f"speed-up 2 vs 1: {ratio:.2f}x (goal >= 1.7)")
    return 0 if ratio >= 1.7 else 1


if __name__ == "__main__":
    raise SystemExit(main())
