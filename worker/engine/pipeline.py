"""`dub()`: the engine's main job, from a video and a dub track to a finished MP4, one segment at a time.

Decode, render, composite and encode run segment by segment and the dub audio is encoded alongside, so memory
holds at most two segments of frames whatever the length of the video.
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import av
import numpy as np

from worker.engine.analysis.options import AnalysisOptions
from worker.engine.audio_io import AudioTrackWriter, decode_for_models
from worker.engine.compositing import ColourSpace, blend, composite, from_upright, to_upright
from worker.engine.errors import (
    CANCELED,
    INVALID_OPTION,
    MEDIA_TOO_LONG,
    OUTPUT_FAILED,
    RENDERER_FAILED,
    EngineError,
)
from worker.engine.probe import AudioInfo, Limits, VideoInfo, probe_audio, probe_video
from worker.engine.renderers import AUDIO_SAMPLE_RATE, Renderer, SegmentInput, create_renderer
from worker.engine.segments import Segment, plan_segments
from worker.engine.timeline import LengthPlan, OutputClock, SyncMode, parse_sync_mode, plan_length
from worker.engine.video_io import FrameReader, Planes, VideoWriter

if TYPE_CHECKING:
    from worker.engine.analysis.analysis import Analysis

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, float], None]


@dataclass(frozen=True)
class DubOptions:
    sync_mode: str = SyncMode.AUTO.value
    # The library's default changes no pixel; the CLI, the API and the worker default to the shipped model.
    renderer: str = "passthrough"
    model: str | None = None  # the dit checkpoint: a model id or folder; None = REDUB_MODEL_PATH or shipped
    lossless: bool = False  # x264 at qp 0: the output decodes to exactly the frames the engine produced
    crf: int = 18
    preset: str = "medium"
    segment_frames: int = 81  # 1+4k frames a segment
    segment_overlap: int = 8
    limits: Limits = field(default_factory=Limits)
    analysis: AnalysisOptions = field(default_factory=AnalysisOptions)  # on_no_face, speakers


class MaskSource(Protocol):
    """Where the renderer may change pixels: provided by scene analysis."""

    def segment_masks(self, source_indices: np.ndarray, output_start: int) -> np.ndarray | None:
        """(frames, height, width) float32 in [0, 1], upright, or None when nothing is to be dubbed."""
        ...


@dataclass
class DubReport:
    video: VideoInfo
    audio: AudioInfo
    plan: LengthPlan
    segments: list[Segment]
    output: dict[str, Any]
    seconds: dict[str, float]
    frames_rendered: int = 0
    analysis: dict[str, Any] | None = None  # Analysis.summary() when scene analysis ran

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": {"video": self.video.summary(), "audio": self.audio.summary()},
            "plan": self.plan.summary(),
            "segments": [[segment.start, segment.end] for segment in self.segments],
            "frames_rendered": self.frames_rendered,
            "analysis": self.analysis,
            "output": self.output,
            "seconds": {stage: round(value, 3) for stage, value in self.seconds.items()},
        }


def dub(
    video: Path,
    audio: Path,
    output: Path,
    options: DubOptions | None = None,
    *,
    mask_source: MaskSource | None = None,
    source_cuts: Sequence[int] = (),
    progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    on_probed: Callable[[VideoInfo, AudioInfo], None] | None = None,
) -> DubReport:
    """Dub `video` with `audio` into `output` (MP4); raise EngineError with a stable code on failure.

    Unless a `mask_source` is given, a renderer that changes pixels gets its masks and shot cuts from scene
    analysis of the video and the dub audio (who speaks, where their lower face is). Analysis also runs
    when the options pin speakers or refuse faceless frames, so those requests are checked for any renderer.
    """
    options = options or DubOptions()
    report = _notify(progress)
    timer = StageTimer()
    parse_sync_mode(options.sync_mode)  # a bad mode is refused before any work
    renderer = create_renderer(options.renderer, options.model)
    with timer("probe"):
        report("probing", 0.0)
        video_info = probe_video(video, options.limits)
        audio_info = probe_audio(audio, options.limits)
    if on_probed is not None:
        on_probed(video_info, audio_info)
    analysis: Analysis | None = None
    if mask_source is None and (renderer.changes_pixels or options.analysis.constrains_the_dub):
        from worker.engine.analysis.analysis import analyze  # loads torch and the face models

        with timer("analyze"):
            analysis = analyze(
                video,
                audio,
                options.analysis,
                progress=lambda _stage, fraction: report("analyzing", fraction),
                should_cancel=should_cancel,
            )
        if renderer.changes_pixels:
            mask_source, source_cuts = analysis, analysis.cuts
    with tempfile.TemporaryDirectory(prefix="redub-") as work:
        with timer("audio"):
            decoded = decode_for_models(audio, Path(work), options.limits.max_duration_s)
        plan, segments = plan_dub(video_info, decoded.duration_s, options, source_cuts)
        log.info(
            "dub planned",
            extra={"frames": plan.output_frames, "segments": len(segments), "sync_mode": plan.mode.value},
        )
        step = _RenderStep(renderer, mask_source, decoded.samples, plan, video_info, timer, should_cancel)
        rendered, facts = write_verified(
            output,
            lambda partial: encode_segments(
                partial,
                video,
                audio,
                video_info,
                audio_info,
                plan,
                segments,
                options,
                step,
                timer,
                report,
                should_cancel,
            ),
            timer,
        )
    report("done", 1.0)
    summary = analysis.summary() if analysis is not None else None
    return DubReport(video_info, audio_info, plan, segments, facts, timer.seconds, rendered, summary)


def length_plan(video_info: VideoInfo, mode: SyncMode, audio_seconds: float) -> LengthPlan:
    """The length plan for this video and a dub track of `audio_seconds`, on the video's own frame times."""
    return plan_length(
        mode,
        video_info.frame_count,
        video_info.frame_rate,
        audio_seconds,
        time_base=video_info.time_base,
        timestamps=video_info.timestamps,
        last_frame_ticks=video_info.last_frame_ticks,
    )


def plan_dub(
    video_info: VideoInfo, audio_seconds: float, options: DubOptions, source_cuts: Sequence[int] = ()
) -> tuple[LengthPlan, list[Segment]]:
    """The length plan and the segments of a dub (what `dub()` renders and a preflight reports)."""
    plan = length_plan(video_info, parse_sync_mode(options.sync_mode), audio_seconds)
    if plan.output_seconds > options.limits.max_duration_s:
        raise EngineError(
            MEDIA_TOO_LONG,
            f"the dub would last {plan.output_seconds:.1f} s; "
            f"the limit is {options.limits.max_duration_s:.0f} s",
        )
    cuts = _output_cuts(plan, source_cuts)
    segments = plan_segments(plan.output_frames, options.segment_frames, options.segment_overlap, cuts)
    return plan, segments


class SegmentStep(Protocol):
    """What becomes of one segment's decoded frames before they are blended and encoded."""

    def __call__(
        self, segment: Segment, sources: np.ndarray, frames: list[Planes], previous: np.ndarray | None
    ) -> tuple[list[Planes], np.ndarray | None, bool]:
        """(frames to show, the renderer's RGB output or None, whether any pixel may have changed).
        `previous` is the renderer's output for the frames this segment shares with the one before."""
        ...


class _RenderStep:
    """The single-process step: render the segment here, conditioned on the previous segment's output."""

    def __init__(
        self,
        renderer: Renderer,
        mask_source: MaskSource | None,
        audio_samples: np.ndarray,
        plan: LengthPlan,
        info: VideoInfo,
        timer: StageTimer,
        should_cancel: Callable[[], bool] | None,
    ) -> None:
        self.renderer, self.mask_source, self.audio_samples = renderer, mask_source, audio_samples
        self.plan, self.info, self.timer = plan, info, timer
        self.should_cancel = should_cancel
        self.colours = colour_space(info)

    def __call__(
        self, segment: Segment, sources: np.ndarray, frames: list[Planes], previous: np.ndarray | None
    ) -> tuple[list[Planes], np.ndarray | None, bool]:
        masks = self.mask_source.segment_masks(sources, segment.start) if self.mask_source else None
        if masks is None or not masks.any():
            return frames, None, False
        with self.timer("render"):
            composited, rgb = render_segment(
                self.renderer,
                segment,
                frames,
                masks,
                self.audio_samples,
                self.plan,
                self.info,
                self.colours,
                previous,
                self.should_cancel,
            )
        return composited, rgb, True


def colour_space(info: VideoInfo) -> ColourSpace:
    return ColourSpace(info.colorspace, info.color_range, info.height, info.pix_fmt)


def encode_segments(
    destination: Path,
    video: Path,
    audio: Path,
    video_info: VideoInfo,
    audio_info: AudioInfo,
    plan: LengthPlan,
    segments: list[Segment],
    options: DubOptions,
    step: SegmentStep,
    timer: StageTimer,
    report: ProgressCallback,
    should_cancel: Callable[[], bool] | None,
) -> int:
    """Decode every segment, pass it through `step`, blend the overlaps and encode with the dub audio;
    return how many frames `step` may have changed."""
    clock = plan.clock
    finished = FinishedFrames(video, video_info, plan, segments, step, timer, report, should_cancel)
    with open_output(destination) as container:
        writer = video_writer(container, video_info, plan, options)
        audio_writer = AudioTrackWriter(container, audio, audio_info, plan.audio_used_seconds)
        for start, frames in finished.runs():
            with timer("encode"):
                write_frames(writer, clock, start, frames)
                audio_writer.write_until(clock.seconds(start + len(frames)))
        with timer("encode"):
            writer.flush()
            audio_writer.finish(plan.output_seconds)
    return finished.frames_rendered


def encode_frame_range(
    destination: Path,
    video: Path,
    video_info: VideoInfo,
    plan: LengthPlan,
    segments: list[Segment],
    options: DubOptions,
    step: SegmentStep,
    timer: StageTimer,
    start: int,
    end: int,
    should_cancel: Callable[[], bool] | None,
) -> None:
    """Encode output frames [start, end) alone, video only, as `encode_segments` encodes them: one closed
    run of GOPs that starts on a keyframe, to be joined with its neighbours without re-encoding."""
    clock = plan.clock
    finished = FinishedFrames(video, video_info, plan, segments, step, timer, _notify(None), should_cancel)
    with open_output(destination, faststart=False) as container:
        writer = video_writer(container, video_info, plan, options)
        for first, frames in finished.runs(start, end):
            with timer("encode"):
                write_frames(writer, clock, first, frames)
        with timer("encode"):
            writer.flush()


@contextmanager
def open_output(destination: Path, *, faststart: bool = True) -> Iterator[av.container.OutputContainer]:
    """An MP4 to write; `faststart`: its index first, for players that stream it (a second pass on close)."""
    options = {"movflags": "+faststart"} if faststart else {}
    try:
        container = av.open(str(destination), "w", format="mp4", options=options)
    except (av.FFmpegError, OSError) as error:
        raise EngineError(OUTPUT_FAILED, f"cannot write {destination.parent} ({error})") from error
    with container:
        yield container


def video_writer(
    container: av.container.OutputContainer, video_info: VideoInfo, plan: LengthPlan, options: DubOptions
) -> VideoWriter:
    return VideoWriter(
        container,
        video_info,
        time_base=plan.clock.time_base,
        lossless=options.lossless,
        crf=options.crf,
        preset=options.preset,
    )


def write_frames(writer: VideoWriter, clock: OutputClock, start: int, frames: list[Planes]) -> None:
    for offset, planes in enumerate(frames):
        index = start + offset
        writer.write(planes, clock.pts(index), clock.pts(index + 1) - clock.pts(index))


class FinishedFrames:
    """The output's frames as they are encoded: each segment decoded, passed through `step` and blended
    with the segment before it where they overlap. Holds at most two segments' frames at a time."""

    def __init__(
        self,
        video: Path,
        video_info: VideoInfo,
        plan: LengthPlan,
        segments: list[Segment],
        step: SegmentStep,
        timer: StageTimer,
        report: ProgressCallback,
        should_cancel: Callable[[], bool] | None,
    ) -> None:
        self.video, self.video_info, self.plan, self.segments = video, video_info, plan, segments
        self.step, self.timer, self.report, self.should_cancel = step, timer, report, should_cancel
        self.frames_rendered = 0  # frames of the segments starting in the range that `step` may have changed

    def runs(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, list[Planes]]]:
        """(first output index, finished frames) a segment at a time, for output frames [start, end).

        A frame's value depends only on the segments that cover it, and those all reach into the range: the
        frames are the same whichever range asks for them."""
        end = self.plan.output_frames if end is None else end
        segments = [segment for segment in self.segments if segment.end > start and segment.start < end]
        with FrameReader(self.video, self.video_info, keep_recent=_largest_overlap(self.segments)) as reader:
            written = start  # output frames finished so far
            held: list[Planes] = []  # frames [written, previous segment's end), waiting to be blended
            held_rgb: np.ndarray | None = None  # the renderer's output for those frames
            for position, segment in enumerate(segments):
                if self.should_cancel is not None and self.should_cancel():
                    raise EngineError(CANCELED, "the dub was canceled")
                self.report("rendering", position / len(segments))
                sources = self.plan.source_indices(segment.start, segment.end)
                with self.timer("decode"):
                    frames = reader.read(sources)
                frames, rgb_out, changed = self.step(segment, sources, frames, held_rgb if held else None)
                if changed and segment.start >= start:
                    self.frames_rendered += segment.frame_count
                if held:
                    overlap = len(held)
                    for offset in range(overlap):
                        weight = (offset + 1) / (overlap + 1)
                        frames[offset] = blend(held[offset], frames[offset], weight)
                following = segments[position + 1] if position + 1 < len(segments) else None
                keep_from = segment.end
                if following is not None and following.shot == segment.shot and following.start < segment.end:
                    keep_from = following.start
                stop = min(keep_from, end)
                if stop > written:
                    yield written, frames[written - segment.start : stop - segment.start]
                    written = stop
                held = frames[keep_from - segment.start :]
                held_rgb = rgb_out[keep_from - segment.start :] if rgb_out is not None else None


def render_segment(
    renderer: Renderer,
    segment: Segment,
    frames: list[Planes],
    masks: np.ndarray,
    audio_samples: np.ndarray,
    plan: LengthPlan,
    info: VideoInfo,
    colours: ColourSpace,
    previous: np.ndarray | None,
    should_cancel: Callable[[], bool] | None,
) -> tuple[list[Planes], np.ndarray]:
    upright = np.stack([to_upright(colours.to_rgb(planes), info.rotation) for planes in frames])
    expected = upright.shape[:3]
    if masks.shape != expected:
        raise EngineError(INVALID_OPTION, f"masks have shape {masks.shape}, frames {expected}")
    request = SegmentInput(
        segment=segment,
        frames=upright,
        masks=masks.astype(np.float32, copy=False),
        audio=audio_samples,
        audio_start=round(plan.clock.seconds(segment.start) * AUDIO_SAMPLE_RATE),
        frame_rate=float(plan.frame_rate),
        previous_frames=previous,
        should_cancel=should_cancel,
    )
    result = renderer.render(request)
    if result.shape != upright.shape or result.dtype != np.uint8:
        raise EngineError(
            RENDERER_FAILED,
            f"renderer {renderer.name} returned {result.shape} {result.dtype}, not {upright.shape} uint8",
        )
    composited = [
        composite(
            planes,
            from_upright(result[index], info.rotation),
            from_upright(masks[index], info.rotation),
            colours,
        )
        for index, planes in enumerate(frames)
    ]
    return composited, result


def _largest_overlap(segments: list[Segment]) -> int:
    """Frames that two neighbouring segments share at most (what the reader should keep decoded)."""
    return max((max(0, one.end - other.start) for one, other in itertools.pairwise(segments)), default=0)


def _output_cuts(plan: LengthPlan, source_cuts: Sequence[int]) -> list[int]:
    """Output frames where a new shot starts: a source shot changes, or playback jumps (a loop restarting)."""
    boundaries = np.asarray(sorted(set(source_cuts)), dtype=np.int64)
    cuts: list[int] = []
    chunk = 65_536
    previous: int | None = None
    for start in range(0, plan.output_frames, chunk):
        sources = plan.source_indices(start, min(plan.output_frames, start + chunk))
        before = np.concatenate([[sources[0] if previous is None else previous], sources[:-1]])
        new_shot = np.searchsorted(boundaries, sources, side="right") != np.searchsorted(
            boundaries, before, side="right"
        )
        if plan.mode is not SyncMode.REMAP:  # remap skips or repeats frames by design
            new_shot |= np.abs(sources - before) > 1
        cuts.extend((start + np.nonzero(new_shot)[0]).tolist())
        previous = int(sources[-1])
    return [cut for cut in cuts if cut > 0]


def write_verified(
    output: Path, encode: Callable[[Path], int], timer: StageTimer
) -> tuple[int, dict[str, Any]]:
    """Encode into a hidden partial file, move it into place whole, and read the result back.

    `encode` writes the file it is given and returns how many segments it rendered; returns that count and
    the output's facts. A failed encode leaves nothing at `output`.
    """
    partial = output.with_name(f".{output.name}.partial")
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        rendered = encode(partial)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    with timer("verify"):
        facts = output_facts(output)
    return rendered, facts


def output_facts(path: Path) -> dict[str, Any]:
    """What a viewer of the output will get, read back from the file itself."""
    try:
        info = probe_video(path, Limits(max_duration_s=float("inf"), max_frames=10**9, max_pixels=10**9))
        audio = probe_audio(path, Limits(max_duration_s=float("inf")))
    except EngineError as error:
        raise EngineError(OUTPUT_FAILED, f"the output cannot be read back ({error.message})") from error
    with av.open(str(path)) as container:
        audio_stream = container.streams.audio[0]
        audio_duration = 0.0
        if audio_stream.duration is not None and audio_stream.time_base is not None:
            audio_duration = float(audio_stream.duration * audio_stream.time_base)
    return {
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "width": info.width,
        "height": info.height,
        "rotation": info.rotation,
        "frame_rate": float(info.frame_rate),
        "frame_count": info.frame_count,
        "duration_s": round(info.duration_s, 6),
        "audio_duration_s": round(audio_duration, 6),
        "video_codec": info.codec,
        "pix_fmt": info.pix_fmt,
        "audio_codec": audio.codec,
        "audio_sample_rate": audio.sample_rate,
    }


def _notify(progress: ProgressCallback | None) -> ProgressCallback:
    def report(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, fraction)

    return report


class StageTimer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started
