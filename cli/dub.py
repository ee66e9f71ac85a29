"""`redub dub VIDEO AUDIO -o OUT`: the engine alone, on local files or URLs, no services."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from cli.analysis_arguments import add_analysis_arguments, analysis_options
from cli.output import fail, progress_bar


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("dub", help="dub a video with a new audio track")
    parser.add_argument("video", help="video file or http(s) URL")
    parser.add_argument("audio", help="audio (or video with sound) file or http(s) URL")
    parser.add_argument("-o", "--output", required=True, type=Path, help="where to write the MP4")
    parser.add_argument(
        "--sync-mode",
        default="auto",
        choices=["auto", "cut_off", "loop", "bounce", "silence", "remap"],
        help="what to do when video and audio differ in length (default auto: keep all of both)",
    )
    parser.add_argument(
        "--model",
        help="the dubbing model: an id from `redub models` or a checkpoint folder (default: the shipped "
        "model); `passthrough` replaces only the audio",
    )
    parser.add_argument(
        "--renderer",
        choices=["dit", "passthrough"],
        help="dit (default) or passthrough (the same as --model passthrough)",
    )
    parser.add_argument("--lossless", action="store_true", help="encode losslessly (x264 qp 0)")
    parser.add_argument("--crf", type=int, default=18, help="x264 quality (lower is better)")
    parser.add_argument("--preset", default="medium", help="x264 speed preset")
    add_analysis_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON report instead of a progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from worker.engine.errors import EngineError
    from worker.engine.pipeline import DubOptions, dub

    with tempfile.TemporaryDirectory(prefix="redub-inputs-") as downloads:
        try:
            options = DubOptions(
                sync_mode=args.sync_mode,
                renderer=_renderer(args),
                model=None if args.model in (None, "passthrough") else args.model,
                lossless=args.lossless,
                crf=args.crf,
                preset=args.preset,
                analysis=analysis_options(args),
            )
            video = _local(args.video, Path(downloads), "video")
            audio = _local(args.audio, Path(downloads), "audio")
            with progress_bar(enabled=not args.json and sys.stderr.isatty()) as show:
                report = dub(video, audio, args.output, options, progress=show)
        except EngineError as error:
            return fail(error.code, error.message, as_json=args.json)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        facts = report.output
        print(
            f"{facts['path']}: {facts['width']}x{facts['height']}, {facts['frame_count']} frames, "
            f"{facts['duration_s']:.2f} s (sync_mode {report.plan.mode.value})"
        )
    return 0


def _renderer(args: argparse.Namespace) -> str:
    if args.model == "passthrough" or args.renderer == "passthrough":
        return "passthrough"
    return "dit"


def _local(location: str, downloads: Path, kind: str) -> Path:
    """A local path for an input, downloading http(s) URLs first."""
    if not location.startswith(("http://", "https://")):
        return Path(location)
    from cli.fetching import download

    return download(location, downloads / kind)
