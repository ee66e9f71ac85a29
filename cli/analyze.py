"""`redub analyze VIDEO [AUDIO]`: shots, face tracks, who speaks and what would be dubbed; no rendering."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.analysis_arguments import add_analysis_arguments, analysis_options
from cli.output import fail, progress_bar


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("analyze", help="analyse a video: shots, faces, speakers (no rendering)")
    parser.add_argument("video", type=Path, help="video file (a still image is a one-frame video)")
    parser.add_argument("audio", type=Path, nargs="?", help="the dub audio (optional)")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument("--frames", action="store_true", help="include per-frame boxes, landmarks and pose")
    add_analysis_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from worker.engine.analysis.analysis import analyze
    from worker.engine.errors import EngineError

    try:
        options = analysis_options(args)
        with progress_bar(enabled=not args.json and sys.stderr.isatty()) as show:
            analysis = analyze(args.video, args.audio, options, progress=show)
    except EngineError as error:
        return fail(error.code, error.message, as_json=args.json)
    report = analysis.to_dict(include_frames=args.frames)
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"{args.video.name}: {report['frame_count']} frames, {len(report['shots'])} shots, "
        f"{len(report['tracks'])} face tracks, dubbed tracks {report['speakers']} "
        f"({report['speaker_selection']}), "
        f"{report['frames_without_face']} frames without a face"
    )
    for track in report["tracks"]:
        print(
            f"  track {track['id']}: frames {track['first_frame']}-{track['last_frame']} "
            f"({track['frames_detected']} detected), speaking {track['speaking']}"
        )
    for warning in report["warnings"]:
        print(f"  warning: {warning}")
    return 0
