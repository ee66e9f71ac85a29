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

X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
MAX_CRF = 51


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
        help="the dubbing model: an id from `redub models` or a checkpoint folder (default: the one "
        "`redub models` marks); `passthrough` replaces only the audio",
    )
    parser.add_argument(
        "--renderer",
        choices=["dit", "passthrough"],
        help="dit (default) or passthrough (the same as --model passthrough)",
    )
    parser.add_argument("--lossless", action="store_true", help="encode losslessly (x264 qp 0)")
    parser.add_argument(
        "--crf", type=int, default=18, help="x264 quality, 0-51 (lower is better; default 18)"
    )
    parser.add_argument("--preset", default="medium", help=f"x264 speed preset: {', '.join(X264_PRESETS)}")
    add_analysis_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON report instead of a progress bar")
    parser.set_defaults(handler=run)


def _option_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, checked before any work (the encoder would only raise deep inside)."""
    if not 0 <= args.crf <= MAX_CRF:
        return f"--crf must be between 0 and {MAX_CRF}, not {args.crf}"
    if args.preset not in X264_PRESETS:
        return f"--preset must be one of {', '.join(X264_PRESETS)}, not {args.preset!r}"
    output: Path = args.output
    if output.is_dir():
        return f"-o {output} is a folder; name the file to write, e.g. {output / 'dubbed.mp4'}"
    for given in (args.video, args.audio):
        if not given.startswith(("http://", "https://")) and output.resolve() == Path(given).resolve():
            return f"-o {output} is one of the inputs; it would be overwritten"
    return None


def _ensure_output_folder(output: Path, *, quiet: bool) -> None:
    """Create a missing output folder, and say so (a typo in the path should not go unnoticed)."""
    if output.parent.exists():
        return
    output.parent.mkdir(parents=True)
    if not quiet:
        print(f"redub: created folder {output.parent}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    problem = _option_problem(args)
    if problem is not None:
        return fail("invalid_option", problem, as_json=args.json)

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
            _ensure_output_folder(args.output, quiet=False)
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
    from model.catalog import PASSTHROUGH, default_model

    if args.renderer is not None:
        return args.renderer
    if (args.model or default_model()) == PASSTHROUGH:
        return "passthrough"
    return "dit"


def _local(location: str, downloads: Path, kind: str) -> Path:
    """A local path for an input, downloading http(s) URLs first."""
    if not location.startswith(("http://", "https://")):
        return Path(location)
    from cli.fetching import download

    return download(location, downloads / kind)
