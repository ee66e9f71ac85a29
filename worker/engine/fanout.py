"""One dub across many workers: plan once, render each segment anywhere, assemble once.

`plan_job` probes, analyses and cuts the dub into segments (a JSON plan plus the analysis file);
`render_patch` renders one segment and keeps only what it changed, a box of YUV planes per frame, losslessly;
`assemble` decodes the source once, pastes every segment's boxes and blends and encodes exactly as `dub()`
does. Segments are rendered independently (no motion frames from the segment before): the seam between two
segments of one shot is the cross-fade of their overlap. A renderer that ignores motion frames therefore
gives the same frames through here as through `dub()`, whatever the number of workers.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worker.engine.audio_io import decode_for_models
from worker.engine.errors import INVALID_MEDIA, EngineError
from worker.engine.pipeline import (
    DubOptions,
    DubReport,
    MaskSource,
    ProgressCallback,
    StageTimer,
    colour_space,
    encode_segments,
    length_plan,
    plan_dub,
    render_segment,
    write_verified,
)
from worker.engine.probe import AudioInfo, VideoInfo, probe_audio, probe_video
from worker.engine.renderers import Renderer, renderer_changes_pixels
from worker.engine.segments import Segment
from worker.engine.timeline import LengthPlan, SyncMode, parse_sync_mode
from worker.engine.video_io import FrameReader, Planes

PLAN_VERSION = 1
# Zip entries carry a time stamp; a fixed one makes a patch's bytes depend on its frames alone.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class JobPlan:
    """What every segment task and the assembly need, decided once."""

    length: LengthPlan
    segments: list[Segment]
    to_render: list[int]  # indices of the segments where a dubbed face may move
    analysis: dict[str, Any] | None  # Analysis.summary() when analysis ran
    seconds: dict[str, float]  # time the planning stages took

    def to_json(self) -> dict[str, Any]:
        length = self.length
        return {
            "version": PLAN_VERSION,
            # The length plan's clock comes from the video's frame times: each worker rebuilds it from its
            # own probe of the same file (`from_json`), and these say which plan it must come to.
            "length": {
                "requested": length.requested.value,
                "audio_seconds": length.audio_seconds,
                "output_frames": length.output_frames,
            },
            "segments": [[item.index, item.start, item.end, item.shot] for item in self.segments],
            "to_render": self.to_render,
            "analysis": self.analysis,
            "seconds": self.seconds,
        }

    def report(
        self,
        video_info: VideoInfo,
        audio_info: AudioInfo,
        facts: dict[str, Any],
        timer: StageTimer,
        frames_rendered: int,
    ) -> DubReport:
        """The dub's report once its output is made: the planning stages' time and `timer`'s together."""
        seconds = dict(self.seconds)
        for stage, value in timer.seconds.items():
            seconds[stage] = seconds.get(stage, 0.0) + value
        return DubReport(
            video_info, audio_info, self.length, self.segments, facts, seconds, frames_rendered, self.analysis
        )

    @classmethod
    def from_json(cls, data: dict[str, Any], video_info: VideoInfo) -> JobPlan:
        """The plan stored by `to_json`, for the video whose probe is `video_info`."""
        if data.get("version") != PLAN_VERSION:
            raise EngineError(INVALID_MEDIA, f"unknown plan version {data.get('version')!r}")
        stored = data["length"]
        length = length_plan(video_info, SyncMode(stored["requested"]), float(stored["audio_seconds"]))
        if length.output_frames != int(stored["output_frames"]):
            raise EngineError(INVALID_MEDIA, "the video is not the one the dub was planned for")
        return cls(
            length=length,
            segments=[Segment(*(int(value) for value in item)) for item in data["segments"]],
            to_render=[int(index) for index in data["to_render"]],
            analysis=data["analysis"],
            seconds={stage: float(value) for stage, value in data["seconds"].items()},
        )


def plan_job(
    video: Path,
    audio: Path,
    options: DubOptions,
    analysis_path: Path,
    *,
    mask_source: MaskSource | None = None,
    source_cuts: Sequence[int] = (),
    progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    on_probed: Callable[[VideoInfo, AudioInfo], None] | None = None,
) -> JobPlan:
    """Probe, analyse and plan as `dub()` does; the analysis that segments draw masks from is saved at
    `analysis_path` (nothing is written there when no segment is to be rendered)."""
    from worker.engine.analysis.analysis import analyze
    from worker.engine.analysis.storage import save_analysis

    timer = StageTimer()
    parse_sync_mode(options.sync_mode)
    # Planning runs where no model need be loaded: whether the renderer changes pixels is known by name.
    changes_pixels = renderer_changes_pixels(options.renderer)
    with timer("probe"):
        video_info = probe_video(video, options.limits)
        audio_info = probe_audio(audio, options.limits)
    if on_probed is not None:
        on_probed(video_info, audio_info)
    summary: dict[str, Any] | None = None
    if mask_source is None and (changes_pixels or options.analysis.constrains_the_dub):
        with timer("analyze"):
            analysis = analyze(
                video,
                audio,
                options.analysis,
                progress=(lambda _stage, fraction: progress("analyzing", fraction)) if progress else None,
                should_cancel=should_cancel,
            )
        summary = analysis.summary()
        if changes_pixels:
            mask_source, source_cuts = analysis, analysis.cuts
            save_analysis(analysis, analysis_path)
    with tempfile.TemporaryDirectory(prefix="redub-plan-") as work, timer("audio"):
        audio_seconds = decode_for_models(audio, Path(work), options.limits.max_duration_s).duration_s
    length, segments = plan_dub(video_info, audio_seconds, options, source_cuts)
    to_render = [
        segment.index
        for segment in segments
        if mask_source is not None and _may_change(mask_source, length, segment)
    ]
    return JobPlan(length, segments, to_render, summary, dict(timer.seconds))


def _may_change(mask_source: MaskSource, length: LengthPlan, segment: Segment) -> bool:
    from worker.engine.analysis.analysis import Analysis

    sources = length.source_indices(segment.start, segment.end)
    if isinstance(mask_source, Analysis):  # the cheap rule preflights use, without drawing masks
        return bool(mask_source.mask_weights(sources, segment.start))
    masks = mask_source.segment_masks(sources, segment.start)
    return masks is not None and bool(masks.any())


@dataclass(frozen=True)
class FramePatch:
    """The box of one frame a segment changed: luma rows/columns from (top, left), chroma from half that."""

    top: int
    left: int
    y: np.ndarray
    u: np.ndarray
    v: np.ndarray


@dataclass(frozen=True)
class SegmentPatch:
    """What rendering one segment changed in its frames, exactly (the composited YUV inside a box)."""

    segment: Segment
    rendered: bool  # the renderer ran (a mask was on): counts towards frames_rendered
    frames: list[FramePatch | None]  # one per frame of the segment; None: unchanged

    @classmethod
    def between(cls, segment: Segment, source: list[Planes], result: list[Planes]) -> SegmentPatch:
        return cls(
            segment, True, [_frame_patch(one, other) for one, other in zip(source, result, strict=True)]
        )

    def apply(self, frames: list[Planes]) -> list[Planes]:
        if len(frames) != len(self.frames):
            raise EngineError(
                INVALID_MEDIA, f"segment {self.segment.index}: patch and frames differ in length"
            )
        patched = []
        for planes, patch in zip(frames, self.frames, strict=True):
            if patch is None:
                patched.append(planes)
                continue
            out = planes.copy()  # the reader keeps decoded frames for the next segment's overlap
            top, left = patch.top, patch.left
            out.y[top : top + patch.y.shape[0], left : left + patch.y.shape[1]] = patch.y
            for plane, box in ((out.u, patch.u), (out.v, patch.v)):
                plane[top // 2 : top // 2 + box.shape[0], left // 2 : left // 2 + box.shape[1]] = box
            patched.append(out)
        return patched

    def save(self, path: Path) -> None:
        """A .npz whose bytes depend on the frames alone, so a task delivered twice writes the same file."""
        segment = self.segment
        boxes = np.full((len(self.frames), 2), -1, np.int64)
        arrays: dict[str, np.ndarray] = {
            "segment": np.array([segment.index, segment.start, segment.end, segment.shot, int(self.rendered)])
        }
        for position, patch in enumerate(self.frames):
            if patch is not None:
                boxes[position] = (patch.top, patch.left)
                arrays.update({f"y{position}": patch.y, f"u{position}": patch.u, f"v{position}": patch.v})
        arrays["boxes"] = boxes
        with zipfile.ZipFile(path, "w") as archive:
            for name, array in arrays.items():
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
                entry = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
                archive.writestr(entry, buffer.getvalue(), compress_type=zipfile.ZIP_DEFLATED)

    @classmethod
    def load(cls, path: Path) -> SegmentPatch:
        try:
            with np.load(path, allow_pickle=False) as stored:
                index, start, end, shot, rendered = (int(value) for value in stored["segment"])
                boxes = stored["boxes"]
                frames: list[FramePatch | None] = [
                    None
                    if top < 0
                    else FramePatch(
                        int(top),
                        int(left),
                        stored[f"y{position}"],
                        stored[f"u{position}"],
                        stored[f"v{position}"],
                    )
                    for position, (top, left) in enumerate(boxes.tolist())
                ]
        except (OSError, ValueError, KeyError) as error:
            raise EngineError(INVALID_MEDIA, f"{path.name}: not a segment patch ({error})") from error
        return cls(Segment(index, start, end, shot), bool(rendered), frames)


def _frame_patch(source: Planes, result: Planes) -> FramePatch | None:
    """The smallest box on the 2x2 chroma grid that holds every changed sample."""
    height, width = source.y.shape
    changed = source.y != result.y
    chroma = (source.u != result.u) | (source.v != result.v)
    changed |= chroma.repeat(2, axis=0).repeat(2, axis=1)[:height, :width]
    rows, columns = np.nonzero(changed)
    if rows.size == 0:
        return None
    top, left = int(rows.min()) // 2 * 2, int(columns.min()) // 2 * 2
    bottom, right = int(rows.max()) + 1, int(columns.max()) + 1
    chroma_bottom, chroma_right = (bottom + 1) // 2, (right + 1) // 2
    return FramePatch(
        top,
        left,
        result.y[top:bottom, left:right].copy(),
        result.u[top // 2 : chroma_bottom, left // 2 : chroma_right].copy(),
        result.v[top // 2 : chroma_bottom, left // 2 : chroma_right].copy(),
    )


def render_patch(
    video: Path,
    video_info: VideoInfo,
    audio_samples: np.ndarray,
    length: LengthPlan,
    segment: Segment,
    renderer: Renderer,
    mask_source: MaskSource,
    should_cancel: Callable[[], bool] | None = None,
) -> SegmentPatch:
    """Render one segment on its own and keep what changed (a renderer may stop early on `should_cancel`)."""
    sources = length.source_indices(segment.start, segment.end)
    with FrameReader(video, video_info, keep_recent=0) as reader:
        frames = reader.read(sources)
    masks = mask_source.segment_masks(sources, segment.start)
    if masks is None or not masks.any():
        return SegmentPatch(segment, False, [None] * len(frames))
    composited, _ = render_segment(
        renderer,
        segment,
        frames,
        masks,
        audio_samples,
        length,
        video_info,
        colour_space(video_info),
        None,
        should_cancel,
    )
    return SegmentPatch.between(segment, frames, composited)


class PasteStep:
    """The assembly's step: a segment's frames are the decoded source with its patch pasted in."""

    def __init__(self, load_patch: Callable[[Segment], SegmentPatch | None], timer: StageTimer) -> None:
        self.load_patch, self.timer = load_patch, timer

    def __call__(
        self, segment: Segment, sources: np.ndarray, frames: list[Planes], previous: np.ndarray | None
    ) -> tuple[list[Planes], np.ndarray | None, bool]:
        with self.timer("paste"):
            patch = self.load_patch(segment)
            if patch is None:
                return frames, None, False
            if patch.segment != segment:
                raise EngineError(INVALID_MEDIA, f"the patch for segment {segment.index} is another's")
            return patch.apply(frames), None, patch.rendered


def assemble(
    video: Path,
    audio: Path,
    output: Path,
    options: DubOptions,
    plan: JobPlan,
    load_patch: Callable[[Segment], SegmentPatch | None],
    *,
    progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> DubReport:
    """Paste every rendered segment into the source and encode the MP4 with the dub audio, once.
    `load_patch` gives a segment's patch (None: the segment was not rendered)."""
    timer = StageTimer()

    def report(stage: str, fraction: float) -> None:
        if progress is not None:
            progress("assembling" if stage == "rendering" else stage, fraction)

    with timer("probe"):
        video_info = probe_video(video, options.limits)
        audio_info = probe_audio(audio, options.limits)
    rendered, facts = write_verified(
        output,
        lambda partial: encode_segments(
            partial,
            video,
            audio,
            video_info,
            audio_info,
            plan.length,
            plan.segments,
            options,
            PasteStep(load_patch, timer),
            timer,
            report,
            should_cancel,
        ),
        timer,
    )
    report("done", 1.0)
    return plan.report(video_info, audio_info, facts, timer, rendered)
