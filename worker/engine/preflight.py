"""`preflight()`: what a dub of these inputs would do — probe, analysis, plan, render estimate — without
rendering a frame. It fails exactly where `dub()` would (limits, no face, unknown speaker)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.engine.analysis.analysis import analyze
from worker.engine.audio_io import decode_for_models
from worker.engine.pipeline import DubOptions, plan_dub
from worker.engine.preview import frame_report
from worker.engine.probe import probe_audio, probe_video


@dataclass(frozen=True)
class Costs:
    """What a dub costs here, as measured on this deployment's succeeded dubs (or assumed before any)."""

    seconds_per_frame: float  # render seconds per re-rendered frame of the renderer named
    frames_measured_over: int  # succeeded dubs of that model the rate comes from; 0: an assumed setting
    seconds_per_video_second: float | None = None  # a whole dub's processing time per second of video
    dubs_measured_over: int = 0


def preflight(
    video: Path,
    audio: Path,
    options: DubOptions,
    costs: Costs,
    *,
    frame_path: Path | None = None,
    progress: Callable[[str, float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """The preflight report; raise EngineError where the dub would fail. With `frame_path`, the report's
    `frame` describes the representative frame written there as a JPEG (see `preview`)."""
    video_info = probe_video(video, options.limits)
    audio_info = probe_audio(audio, options.limits)
    with tempfile.TemporaryDirectory(prefix="redub-preflight-") as work:
        audio_seconds = decode_for_models(audio, Path(work), options.limits.max_duration_s).duration_s
    # The plan first: media too long to dub is refused before a long analysis.
    plan_dub(video_info, audio_seconds, options)
    analysis = analyze(video, audio, options.analysis, progress=progress, should_cancel=should_cancel)
    plan, segments = plan_dub(video_info, audio_seconds, options, analysis.cuts)
    # The same rule as rendering: a segment is rendered when some dubbed face in it is to move.
    frames_to_render = sum(
        segment.frame_count
        for segment in segments
        if analysis.mask_weights(plan.source_indices(segment.start, segment.end), segment.start)
    )
    report = {
        "input": {"video": video_info.summary(), "audio": audio_info.summary()},
        "analysis": analysis.to_dict(),
        "plan": plan.summary(),
        "segment_count": len(segments),
        "estimate": _estimate(options.renderer, frames_to_render, costs, video_info.duration_s),
    }
    if frame_path is not None:
        report["frame"] = frame_report(video, analysis, frame_path)
    return report


def _estimate(renderer: str, frames_to_render: int, costs: Costs, video_seconds: float) -> dict[str, Any]:
    """Render time for the renderer the dub would run (passthrough changes no pixels and costs none), and
    the whole dub's processing time where earlier dubs measured it."""
    seconds_per_frame = 0.0 if renderer == "passthrough" else costs.seconds_per_frame
    processing = None
    if costs.seconds_per_video_second is not None:
        processing = round(costs.seconds_per_video_second * video_seconds, 1)
    if renderer == "passthrough":
        render_note = (
            "The renderer is passthrough (audio-only dub): it re-renders no pixels, so no render time."
        )
    elif costs.frames_measured_over:
        render_note = (
            f"Render time: frames in segments with a dubbed face times the median render seconds per frame "
            f"of the last {costs.frames_measured_over} succeeded dubs with this model."
        )
    else:
        render_note = (
            "Render time: frames in segments with a dubbed face times REDUB_RENDER_SECONDS_PER_FRAME, an "
            "assumption: no dub with this model has succeeded here yet to measure it."
        )
    if processing is None:
        processing_note = "No dub has succeeded here yet, so there is no measured processing time."
    else:
        processing_note = (
            f"Processing time (download, analysis, render, encoding; not queueing): the median seconds "
            f"per second of video of the last {costs.dubs_measured_over} succeeded dubs times this video's "
            "length."
        )
    return {
        "renderer": renderer,
        "frames_to_render": frames_to_render,
        "seconds_per_frame": seconds_per_frame,
        "seconds_per_frame_measured": renderer == "passthrough" or costs.frames_measured_over > 0,
        "render_seconds": round(frames_to_render * seconds_per_frame, 1),
        "processing_seconds": processing,
        "is_estimate": True,
        "note": f"An estimate. {render_note} {processing_note}",
    }
