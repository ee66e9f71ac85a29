"""`preflight()`: what a dub of these inputs would do — probe, analysis, plan, render estimate — without
rendering a frame. It fails exactly where `dub()` would (limits, no face, unknown speaker)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worker.engine.analysis.analysis import analyze
from worker.engine.audio_io import decode_for_models
from worker.engine.pipeline import DubOptions, plan_dub
from worker.engine.preview import frame_report
from worker.engine.probe import probe_audio, probe_video

ESTIMATE_NOTE = (
    "An estimate: frames in segments that contain a dubbed face, times the configured seconds per frame "
    "of the renderer named here (an assumption until measured on the production GPU); queueing, download "
    "and encoding are not included."
)
PASSTHROUGH_NOTE = (
    "The configured renderer is passthrough (audio-only dub): it re-renders no pixels, so no render time; "
    "queueing, download, decoding and encoding are not included."
)


def preflight(
    video: Path,
    audio: Path,
    options: DubOptions,
    seconds_per_frame: float,
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
        "estimate": _estimate(options.renderer, frames_to_render, seconds_per_frame),
    }
    if frame_path is not None:
        report["frame"] = frame_report(video, analysis, frame_path)
    return report


def _estimate(renderer: str, frames_to_render: int, seconds_per_frame: float) -> dict[str, Any]:
    """Render time for the renderer the dub would run: passthrough changes no pixels and costs none."""
    if renderer == "passthrough":
        seconds_per_frame = 0.0
    return {
        "renderer": renderer,
        "frames_to_render": frames_to_render,
        "seconds_per_frame": seconds_per_frame,
        "render_seconds": round(frames_to_render * seconds_per_frame, 1),
        "is_estimate": True,
        "note": PASSTHROUGH_NOTE if renderer == "passthrough" else ESTIMATE_NOTE,
    }
