"""Fleet simulator: the wall time of one fanned-out dub of a 10-minute 1080p video on 8, 32 and 128 GPU
workers.

`python -m bench.fleet [--gpu-speed 100] [--cpu-workers 16] [--chunk-frames 500] [--write m.json |
--measured m.json]`. First it measures, on this machine, with the real engine: the shipped DiT rendering each
segment of a small synthetic clip (one torch thread, seconds per frame), what a segment task does besides
rendering at the target's length (the probe, decoding the whole 10-minute dub track, loading the analysis,
decoding its 1080p frames), the patch a segment uploads, the single assembly at 1080p (decode, paste, encode,
read back) per output frame, and the chunked assembly's two steps per output frame: encoding a chunk (decode,
paste, encode) and joining the chunks (copying their packets, encoding the AAC track, reading back).
Then a discrete-event simulation runs the dub's segments first in, first out over the GPU workers: each worker
downloads the inputs once and, before its first segment, fetches and loads the analysis and decodes the dub
track (its input cache keeps them for the dub's other segments), then takes segments (task overhead, the
segment's frames decoded, rendering sped up by `--gpu-speed`, patch upload) until none is left. When the
last segment ends, the chunks of the assembly (`--chunk-frames` output frames each) run first in, first out
over the CPU workers the same way (inputs once per worker, the patches of the chunk's segments, the encode,
the chunk's upload), and the join follows the last chunk. It prints the predicted wall time of each fleet,
split into inputs (downloaded, and on a GPU worker decoded and loaded), segments, assembly (the chunks) and
join, and names the largest part: the bottleneck.

Assumptions (parameters): the GPU renders `--gpu-speed` times faster than one CPU thread here; the CPU work
of a segment task, a chunk and the join run at this machine's speed (`--cpu-speed` scales them); every segment
shows a face; workers are up with the model loaded (no scale-up delay); storage gives each worker
`--bandwidth-mb` MB/s; each task costs `--dispatch-s` of queue and SQL round trips.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import tempfile
import time
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from worker.engine.chunks import Chunk
    from worker.engine.fanout import JobPlan
    from worker.engine.pipeline import DubOptions

TARGET_SECONDS = 600.0
TARGET_FPS = 25.0
TARGET_SIZE = (1920, 1080)
SEGMENT_FRAMES = 81
SEGMENT_OVERLAP = 8
# A segment task's CPU work that a GPU worker does once per dub, not once per segment: its input cache keeps
# the decoded dub track and the loaded analysis (worker/tasks/input_cache.py).
ONCE_PER_WORKER = ("dub track decode", "analysis load")


@dataclass(frozen=True)
class Measured:
    """What the engine took on this machine, scaled to one segment or frame of the target video."""

    render_s_per_frame: list[float]  # DiT on one CPU thread, one value per measured segment
    # A segment task's CPU work besides rendering, for an 81-frame 1080p segment of the 10-minute video.
    segment_cpu_s: dict[str, float]  # decoding the whole dub track, loading the analysis, decoding frames
    patch_bytes: float  # one 81-frame segment's patch at 1080p
    analysis_bytes: float  # the 10-minute video's analysis, which a GPU worker downloads once per dub
    assembly_s_per_frame: float  # one task: decode + paste + encode + read back, per 1080p output frame
    assembly_stages_s_per_frame: dict[str, float]
    output_bytes_per_frame: float
    chunk_s_per_frame: float  # a chunk's task: decode + paste + encode, per 1080p output frame
    join_s_per_frame: float  # the join: packets copied, AAC encoded, the output read back, per output frame
    join_fixed_s: float  # the join's time whatever the length: probing, opening, writing the index


@dataclass(frozen=True)
class Work:
    """One dub as the simulator sees it: seconds of each part."""

    segments_s: list[float]  # each segment's time on a GPU worker (task overhead, CPU work, render, upload)
    download_s: float  # a worker's first fetch of the job's inputs (then cached)
    chunks_s: list[float]  # each chunk's time on a CPU worker (task overhead, patches, encode, upload)
    join_s: float  # after the last chunk: the chunks fetched and joined with the audio, the output uploaded
    # Before a GPU worker's first segment only: the analysis fetched and loaded, the dub track decoded (then
    # kept by the worker's input cache).
    segment_setup_s: float = 0.0


@dataclass(frozen=True)
class Prediction:
    workers: int
    cpu_workers: int
    wall_s: float
    parts: dict[str, float]  # the critical path: download, segments, assembly (the chunks), join
    bottleneck: str
    busy: float  # the fraction of GPU worker time spent on segments until the last one ends


def _first_in_first_out(tasks_s: list[float], workers: int, download_s: float, start: float) -> float:
    """When the last of `tasks_s` ends, each handed to the worker free first from `start`; a worker
    downloads the inputs before its first task."""
    free = [(start, number, False) for number in range(min(workers, len(tasks_s)) or 1)]
    heapq.heapify(free)
    last_end = start
    for seconds in tasks_s:
        at, number, has_input = heapq.heappop(free)
        end = (at if has_input else at + download_s) + seconds
        last_end = max(last_end, end)
        heapq.heappush(free, (end, number, True))
    return last_end


def simulate(work: Work, workers: int, cpu_workers: int = 1) -> Prediction:
    """Segments first in, first out over the GPU workers; when the last ends, the chunks likewise over the
    CPU workers; the join after the last chunk."""
    if workers < 1 or cpu_workers < 1:
        raise ValueError("at least one worker of each kind")
    setup = work.download_s + work.segment_setup_s
    rendered = _first_in_first_out(work.segments_s, workers, setup, 0.0)
    assembled = _first_in_first_out(work.chunks_s, cpu_workers, work.download_s, rendered)
    # Each worker's first task waits for the inputs: one download on the path to the last segment, one more
    # (every CPU worker starts at once when the last segment ends) on the path to the last chunk.
    download = setup if work.segments_s else 0.0
    cpu_download = work.download_s if work.chunks_s else 0.0
    parts = {
        "download": download + cpu_download,
        "segments": rendered - download,
        "assembly": assembled - rendered - cpu_download,
        "join": work.join_s,
    }
    capacity = rendered * min(workers, max(len(work.segments_s), 1))
    busy = sum(work.segments_s) / capacity if capacity else 0.0
    bottleneck = max(parts, key=parts.__getitem__)
    return Prediction(workers, cpu_workers, assembled + work.join_s, parts, bottleneck, busy)


def target_segments(frames: int, segment_frames: int, overlap: int) -> int:
    """How many segments cut `frames` frames (one shot) with `overlap` frames shared by neighbours."""
    if frames <= segment_frames:
        return 1
    return math.ceil((frames - segment_frames) / (segment_frames - overlap)) + 1


def work_for(
    measured: Measured,
    *,
    gpu_speed: float,
    cpu_speed: float,
    bandwidth_bytes_s: float,
    dispatch_s: float,
    input_bytes: float,
    chunk_frames: int,
) -> Work:
    frames = int(TARGET_SECONDS * TARGET_FPS)
    count = target_segments(frames, SEGMENT_FRAMES, SEGMENT_OVERLAP)
    once = {name: seconds for name, seconds in measured.segment_cpu_s.items() if name in ONCE_PER_WORKER}
    per_task = (
        dispatch_s
        + (sum(measured.segment_cpu_s.values()) - sum(once.values())) / cpu_speed
        + measured.patch_bytes / bandwidth_bytes_s
    )
    setup = sum(once.values()) / cpu_speed + measured.analysis_bytes / bandwidth_bytes_s
    rates = measured.render_s_per_frame
    segments = [per_task + rates[index % len(rates)] * SEGMENT_FRAMES / gpu_speed for index in range(count)]
    # Chunks as the worker cuts them (evenly, at most about `chunk_frames`); each pastes the patches of the
    # segments it covers (one more where a segment straddles its start) and uploads its encoded frames.
    chunk_count = math.ceil(frames / chunk_frames) if chunk_frames > 0 else 1
    chunk_size = frames / chunk_count
    patches = min(count, math.ceil(count / chunk_count) + 1)
    chunk = (
        dispatch_s
        + (patches * measured.patch_bytes + chunk_size * measured.output_bytes_per_frame) / bandwidth_bytes_s
        + chunk_size * measured.chunk_s_per_frame / cpu_speed
    )
    # The join downloads every chunk and uploads the output: the output's bytes twice.
    join = (
        dispatch_s
        + (measured.join_fixed_s + measured.join_s_per_frame * frames) / cpu_speed
        + 2 * measured.output_bytes_per_frame * frames / bandwidth_bytes_s
    )
    return Work(segments, input_bytes / bandwidth_bytes_s, [chunk] * chunk_count, join, setup)


def single_assembly_s(measured: Measured, *, cpu_speed: float, bandwidth_bytes_s: float) -> float:
    """What one assembly task (before chunks) takes after the last segment: encode, read back, upload."""
    frames = TARGET_SECONDS * TARGET_FPS
    return (
        measured.assembly_s_per_frame * frames / cpu_speed
        + measured.output_bytes_per_frame * frames / bandwidth_bytes_s
    )


# --- measurement with the real engine -----------------------------------------------------------------


def _write_tone(path: Path, seconds: float) -> None:
    """A 48 kHz stereo 16-bit WAV, the kind of dub track a customer sends."""
    rate = 48000
    times = np.arange(int(seconds * rate)) / rate
    samples = (np.sin(2 * np.pi * 220 * times) * 8000).astype(np.int16)
    with wave.open(str(path), "wb") as sink:
        sink.setnchannels(2)
        sink.setsampwidth(2)
        sink.setframerate(rate)
        sink.writeframes(np.repeat(samples, 2).tobytes())


def _write_customer_video(path: Path, frames: np.ndarray, frame_rate: float) -> None:
    """The frames as a customer's upload: H.264 4:2:0 at about 8 Mbit/s, no audio track needed."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=round(frame_rate))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.options = {"b": "8M", "preset": "medium"}
        for frame in frames:
            container.mux(
                stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24"))
            )
        container.mux(stream.encode(None))


def measure(work: Path, clip_seconds: float, model: str) -> Measured:
    import torch

    torch.set_num_threads(1)
    from model.synth import make_pair, write_pair
    from model.synth.io import write_wav
    from worker.engine.analysis.storage import load_analysis
    from worker.engine.audio_io import decode_for_models
    from worker.engine.chunks import Chunk, encode_chunk
    from worker.engine.fanout import SegmentPatch, assemble, plan_job, render_patch
    from worker.engine.pipeline import DubOptions
    from worker.engine.probe import probe_video
    from worker.engine.renderers import create_renderer
    from worker.engine.video_io import FrameReader

    # 1. Rendering: the shipped DiT on each segment of a small talking clip.
    write_pair(make_pair("clean", 11, "heldout", size=(256, 256), seconds=clip_seconds), work / "small")
    small_video, small_audio = work / "small" / "source.mp4", work / "small" / "dub.wav"
    options = DubOptions(renderer="dit", model=model, segment_frames=17)
    plan = plan_job(small_video, small_audio, options, work / "analysis.npz")
    info = probe_video(small_video)
    samples = decode_for_models(small_audio, work).samples
    started = time.perf_counter()
    analysis = load_analysis(work / "analysis.npz")
    analysis_load_per_frame = (time.perf_counter() - started) / plan.length.output_frames
    analysis_bytes_per_frame = (work / "analysis.npz").stat().st_size / plan.length.output_frames
    renderer = create_renderer("dit", model)
    rates, box_fractions = [], []
    for index in plan.to_render:
        segment = plan.segments[index]
        started = time.perf_counter()
        patch = render_patch(small_video, info, samples, plan.length, segment, renderer, analysis)
        rates.append((time.perf_counter() - started) / len(patch.frames))
        box_fractions += [box.y.size / (256 * 256) for box in patch.frames if box is not None]
    box_side = math.sqrt(float(np.mean(box_fractions)) * TARGET_SIZE[0] * TARGET_SIZE[1])

    # 2. A segment task's work besides rendering, at the target's length: the whole dub track is decoded
    # (10 minutes), the analysis loaded, the segment's 1080p frames decoded.
    long_audio = work / "long.wav"
    _write_tone(long_audio, TARGET_SECONDS)
    started = time.perf_counter()
    decode_for_models(long_audio, work)
    audio_s = time.perf_counter() - started
    large = make_pair("clean", 11, "heldout", size=TARGET_SIZE, seconds=1.0)
    large_video, large_audio = work / "large.mp4", work / "large.wav"
    _write_customer_video(large_video, large.source.frames, large.source.frame_rate)
    write_wav(
        large_audio, large.target.audio[: int(len(large.source.frames) / large.source.frame_rate * 16000)]
    )
    large_info = probe_video(large_video)
    started = time.perf_counter()
    with FrameReader(large_video, large_info, keep_recent=0) as reader:
        frames = reader.read(np.arange(large_info.frame_count))
    decode_per_frame = (time.perf_counter() - started) / len(frames)
    target_frames = TARGET_SECONDS * TARGET_FPS
    segment_cpu = {
        "dub track decode": audio_s,
        "analysis load": analysis_load_per_frame * target_frames,
        "frame decode": decode_per_frame * SEGMENT_FRAMES,
    }

    # 3. The patch and the assembly at 1080p: a face-sized box changed in every frame, pasted and encoded
    # with the API's encoding (x264 medium, crf 18), the output read back.
    side = int(box_side) // 2 * 2
    top, left = (TARGET_SIZE[1] - side) // 2, (TARGET_SIZE[0] - side) // 2
    changed = []
    for planes in frames:
        out = planes.copy()
        out.y[top : top + side, left : left + side] ^= 1
        changed.append(out)
    large_options = DubOptions(renderer="passthrough", segment_frames=SEGMENT_FRAMES)
    large_plan = plan_job(large_video, large_audio, large_options, work / "large-analysis.npz")
    (segment,) = large_plan.segments
    patch = SegmentPatch.between(segment, frames, changed)
    patch.save(work / "patch.npz")
    patch_bytes = (work / "patch.npz").stat().st_size / len(frames) * SEGMENT_FRAMES
    output = work / "out.mp4"
    started = time.perf_counter()
    report = assemble(large_video, large_audio, output, large_options, large_plan, lambda _segment: patch)
    assembly_per_frame = (time.perf_counter() - started) / len(frames)
    stages = ("decode", "paste", "encode", "verify")
    assembly_stages = {stage: report.seconds.get(stage, 0.0) / len(frames) for stage in stages}

    # 4. The same assembly in two chunks, then joined. The join's time is nearly all fixed (probing, opening,
    # reading back) at this length, so it is measured again on 8 times the frames (the clip repeated; its
    # chunks encoded fast, which makes bigger packets: more to copy): the difference is the part that grows
    # with the video.
    half = len(frames) // 2
    chunks = [Chunk(0, 0, half), Chunk(1, half, len(frames))]
    pieces = {chunk: work / f"chunk{chunk.index}.mp4" for chunk in chunks}
    started = time.perf_counter()
    for chunk in chunks:
        encode_chunk(large_video, pieces[chunk], large_options, large_plan, chunk, lambda _segment: patch)
    chunk_per_frame = (time.perf_counter() - started) / len(frames)
    short_s = _join_seconds(chunks, pieces, large_video, large_audio, large_options, large_plan, work)
    long_video, long_audio = work / "long.mp4", work / "long-dub.wav"
    repeats = 8
    _write_customer_video(
        long_video, np.concatenate([large.source.frames] * repeats), large.source.frame_rate
    )
    write_wav(
        long_audio, np.tile(large.target.audio[: int(len(frames) / large.source.frame_rate * 16000)], repeats)
    )
    fast = DubOptions(renderer="passthrough", segment_frames=SEGMENT_FRAMES, preset="ultrafast")
    long_plan = plan_job(long_video, long_audio, fast, work / "long-analysis.npz")
    total = long_plan.length.output_frames
    long_chunks = [Chunk(0, 0, total // 2), Chunk(1, total // 2, total)]
    long_pieces = {chunk: work / f"long-chunk{chunk.index}.mp4" for chunk in long_chunks}
    for chunk in long_chunks:
        encode_chunk(long_video, long_pieces[chunk], fast, long_plan, chunk, lambda _segment: None)
    long_s = _join_seconds(long_chunks, long_pieces, long_video, long_audio, fast, long_plan, work)
    join_per_frame = max(0.0, (long_s - short_s) / (total - len(frames)))
    join_fixed = max(0.0, short_s - join_per_frame * len(frames))
    return Measured(
        render_s_per_frame=rates,
        segment_cpu_s=segment_cpu,
        patch_bytes=patch_bytes,
        analysis_bytes=analysis_bytes_per_frame * target_frames,
        assembly_s_per_frame=assembly_per_frame,
        assembly_stages_s_per_frame=assembly_stages,
        output_bytes_per_frame=output.stat().st_size / len(frames),
        chunk_s_per_frame=chunk_per_frame,
        join_s_per_frame=join_per_frame,
        join_fixed_s=join_fixed,
    )


def _join_seconds(
    chunks: list[Chunk],
    pieces: dict[Chunk, Path],
    video: Path,
    audio: Path,
    options: DubOptions,
    plan: JobPlan,
    work: Path,
) -> float:
    """The quicker of two joins of these chunks (the first also warms the file cache)."""
    from worker.engine.chunks import join_chunks

    times = []
    for _ in range(2):
        started = time.perf_counter()
        join_chunks(chunks, pieces.__getitem__, video, audio, work / "joined.mp4", options, plan, 0)
        times.append(time.perf_counter() - started)
    return min(times)


def _seconds(parts: dict[str, float], unit: str = "s") -> str:
    return ", ".join(f"{name} {value:.2f} {unit}" for name, value in parts.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--gpu-speed", type=float, default=100.0, help="GPU render speed / one CPU thread here"
    )
    parser.add_argument("--cpu-speed", type=float, default=1.0, help="CPU workers' speed / this machine")
    parser.add_argument("--bandwidth-mb", type=float, default=100.0, help="MB/s from storage per worker")
    parser.add_argument("--dispatch-s", type=float, default=0.05, help="queue and SQL seconds per task")
    parser.add_argument("--input-mb", type=float, default=715.0, help="10 min of 8 Mbit/s video + WAV dub")
    parser.add_argument("--clip-seconds", type=float, default=1.4)
    parser.add_argument("--model", default="redub-mini-synth")
    parser.add_argument("--write", type=Path, help="save the measurements as JSON")
    parser.add_argument("--measured", type=Path, help="simulate from saved measurements, measuring nothing")
    parser.add_argument("--workers", type=int, nargs="+", default=[8, 32, 128], help="GPU workers")
    parser.add_argument("--cpu-workers", type=int, nargs="+", default=[16], help="CPU workers")
    parser.add_argument(
        "--chunk-frames", type=int, default=500, help="output frames a chunk (REDUB_ASSEMBLY_CHUNK_FRAMES)"
    )
    args = parser.parse_args()

    if args.measured:
        measured = Measured(**json.loads(args.measured.read_text()))
    else:
        with tempfile.TemporaryDirectory(prefix="redub-bench-fleet-") as directory:
            measured = measure(Path(directory), args.clip_seconds, args.model)
    if args.write:
        args.write.write_text(json.dumps(asdict(measured), indent=1))
    mb = 1e6
    work = work_for(
        measured,
        gpu_speed=args.gpu_speed,
        cpu_speed=args.cpu_speed,
        bandwidth_bytes_s=args.bandwidth_mb * mb,
        dispatch_s=args.dispatch_s,
        input_bytes=args.input_mb * mb,
        chunk_frames=args.chunk_frames,
    )
    single = single_assembly_s(measured, cpu_speed=args.cpu_speed, bandwidth_bytes_s=args.bandwidth_mb * mb)
    rates = measured.render_s_per_frame
    stages_ms = {stage: value * 1000 for stage, value in measured.assembly_stages_s_per_frame.items()}
    print(
        f"measured here: DiT {np.mean(rates):.3f} s/frame on one CPU thread ({len(rates)} segments, "
        f"{min(rates):.3f}-{max(rates):.3f}); a segment task's CPU work: {_seconds(measured.segment_cpu_s)}; "
        f"patch {measured.patch_bytes / mb:.2f} MB; analysis {measured.analysis_bytes / mb:.1f} MB; assembly "
        f"{measured.assembly_s_per_frame * 1000:.1f} ms/frame at 1080p ({_seconds(stages_ms, 'ms')}); in "
        f"chunks: encode {measured.chunk_s_per_frame * 1000:.1f} ms/frame, join "
        f"{measured.join_fixed_s:.2f} s + {measured.join_s_per_frame * 1000:.2f} ms/frame"
    )
    print(
        f"target: {TARGET_SECONDS / 60:g} min 1080p at {TARGET_FPS:g} fps, {len(work.segments_s)} "
        f"segments of {SEGMENT_FRAMES} frames, each {np.mean(work.segments_s):.2f} s on a worker (and "
        f"{work.segment_setup_s:.2f} s once per worker); GPU speed x"
        f"{args.gpu_speed:g}, CPU speed x{args.cpu_speed:g}, {args.bandwidth_mb:g} MB/s per worker; "
        f"assembly in {len(work.chunks_s)} chunks of {args.chunk_frames} frames at most, each "
        f"{work.chunks_s[0]:.1f} s on a CPU worker, join {work.join_s:.1f} s "
        f"(one assembly task: {single:.0f} s)"
    )
    print(
        "| GPU workers | CPU workers | wall | input download | segments | assembly (chunks) | join "
        "| GPUs busy | bottleneck |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for workers in args.workers:
        for cpu_workers in args.cpu_workers:
            result = simulate(work, workers, cpu_workers)
            parts = result.parts
            print(
                f"| {workers} | {cpu_workers} | {result.wall_s / 60:.1f} min | {parts['download']:.0f} s "
                f"| {parts['segments']:.0f} s | {parts['assembly']:.0f} s | {parts['join']:.0f} s "
                f"| {result.busy:.0%} | {result.bottleneck} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
