"""The flags that say who is dubbed and what to do without a face, shared by `dub` and `analyze`."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.engine.analysis.options import AnalysisOptions


MAX_SPEAKERS = 20


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
        # The same rule as the API's `speakers`: leave the flag out for the default.
        if not isinstance(speakers, list) or not 1 <= len(speakers) <= MAX_SPEAKERS:
            raise EngineError(
                INVALID_OPTION,
                f"--speakers must be a JSON list of 1 to {MAX_SPEAKERS} speakers (leave it out to dub "
                "whoever speaks)",
            )
    return AnalysisOptions.from_request(on_no_face=args.on_no_face, speakers=speakers)
