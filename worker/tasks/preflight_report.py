"""A preflight's report: what a dub of these inputs would do, computed without rendering a frame."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worker.engine.analysis.analysis import analyze
from worker.engine.analysis.options import AnalysisOptions
from worker.engine.audio_io import decode_for_models
from worker.engine.errors import MEDIA_TOO_LONG, EngineError
from worker.engine.pipeline import DubOptions, _output_cuts
from worker.engine.probe import Limits, probe_audio, probe_video
from worker.engine.segments import plan_segments
from worker.engine.timeline import parse_sync_mode, plan_length

ESTIMATE_NOTE = (
    "An estimate: frames in segments that contain a dubbed face, times the GPU renderer's configured "
    "seconds per frame; queueing, download and encoding are not included."
)


def build_report(
    video: Path,
    audio: Path,
    sync_mode: str,
    analysis_options: AnalysisOptions,
    limits: Limits,
    seconds_per_frame: float,
    *,
    progress: Callable[[str, float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Probe, analyse and plan as `dub()` would; raise EngineError where the dub would fail."""
    dub_options = DubOptions(sync_mode=sync_mode, limits=limits, analysis=analysis_options)
    mode = parse_sync_mode(sync_mode)
    video_info = probe_video(video, limits)
    audio_info = probe_audio(audio, limits)
    analysis = analyze(video, audio, analysis_options, progress=progress, should_cancel=should_cancel)
    with tempfile.TemporaryDirectory(prefix="redub-preflight-") as work:
        audio_seconds = decode_for_models(audio, Path(work)).duration_s
    plan = plan_length(mode, video_info.frame_count, video_info.frame_rate, audio_seconds)
    if plan.output_seconds > limits.max_duration_s:
        raise EngineError(
            MEDIA_TOO_LONG,
            f"the dub would last {plan.output_seconds:.1f} s; the limit is {limits.max_duration_s:.0f} s",
        )
    segments = plan_segments(
        plan.output_frames,
        dub_options.segment_frames,
        dub_options.segment_overlap,
        _output_cuts(plan, analysis.cuts),
    )
    # The same rule as rendering: a segment is re-rendered when some dubbed face in it is to move.
    frames_to_render = sum(
        segment.frame_count
        for segment in segments
        if analysis.mask_weights(plan.source_indices(segment.start, segment.end), segment.start)
    )
    return {
        "input": {"video": video_info.summary(), "audio": audio_info.summary()},
        "analysis": analysis.to_dict(),
        "plan": plan.summary(),
        "segment_count": len(segments),
        "estimate": {
            "frames_to_render": frames_to_render,
            "seconds_per_frame": seconds_per_frame,
            "render_seconds": round(frames_to_render * seconds_per_frame, 1),
            "is_estimate": True,
            "note": ESTIMATE_NOTE,
        },
    }
