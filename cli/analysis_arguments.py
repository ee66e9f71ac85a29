"""The flags that say who is dubbed and what to do without a face, shared by `dub` and `analyze`."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.engine.analysis.options import AnalysisOptions


def add_analysis_arguments(parser: Any) -> None:
    parser.add_argument(
        "--on-no-face",
        default="passthrough",
        choices=["passthrough", "fail"],
        help="frames without a usable face pass through unchanged (default) or fail",
    )
    parser.add_argument(
        "--speakers",
        help="JSON list pinning who is dubbed, e.g. '[{\"track_id\": 0}]' or "
        '\'[{"point": {"frame": 0, "x": 320, "y": 200}}]\' (default: whoever speaks in the source)',
    )


def analysis_options(args: argparse.Namespace) -> AnalysisOptions:
    """AnalysisOptions from the flags; EngineError(invalid_option) for a malformed --speakers."""
    from worker.engine.analysis.options import AnalysisOptions
    from worker.engine.errors import INVALID_OPTION, EngineError

    speakers = None
    if args.speakers is not None:
        try:
            speakers = json.loads(args.speakers)
        except json.JSONDecodeError as error:
            raise EngineError(INVALID_OPTION, f"--speakers is not valid JSON: {error}") from error
        if not isinstance(speakers, list):
            raise EngineError(INVALID_OPTION, "--speakers must be a JSON list")
    return AnalysisOptions.from_request(on_no_face=args.on_no_face, speakers=speakers)
