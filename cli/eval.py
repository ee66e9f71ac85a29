"""`redub eval`: the lip-sync benchmark on held-out synthetic clips, through the real engine."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from cli.output import fail

_NAMED_SIZES = {"360p": (360, 640), "480p": (480, 854), "720p": (720, 1280), "1080p": (1080, 1920)}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval", help="score lip sync and pixel fidelity on held-out synthetic clips dubbed by the engine"
    )
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--checkpoint", type=Path, help="a saved dubbing pipeline: renders with dit")
    model.add_argument("--renderer", help="a renderer by name, e.g. passthrough (audio-only dub)")
    parser.add_argument("--seeds", type=int, default=1, help="held-out seeds per condition (default 1)")
    parser.add_argument("--conditions", help="comma-separated conditions (default: all)")
    parser.add_argument(
        "--size",
        help="frame size for every condition: 360p, 720p, ... or WIDTHxHEIGHT "
        "(default 640x360, small_face 1280x720)",
    )
    parser.add_argument("--seconds", type=float, help="clip length in seconds (default 2)")
    parser.add_argument(
        "--segment-frames", type=int, help="engine segment length, 1+4k frames (default 29: 2 per clip)"
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="dub each clip's truth with the checkpoint's VAE round trip instead of its DiT: what a perfect "
        "DiT could reach through this VAE",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON report instead of the table")
    parser.add_argument(
        "--write-card",
        action="store_true",
        help="store the result as the `eval` of the checkpoint's model card (--checkpoint or the default)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from model.evaluation.benchmark import (
        DEFAULT_SECONDS,
        DEFAULT_SEGMENT_FRAMES,
        BenchmarkSettings,
        run_benchmark,
    )
    from model.evaluation.table import format_table
    from model.synth.speech import SpeechError
    from worker.engine.errors import INVALID_OPTION, OUTPUT_FAILED, EngineError

    try:
        renderer, checkpoint = _model(args.renderer, args.checkpoint)
        settings = BenchmarkSettings(
            renderer=renderer,
            checkpoint=checkpoint,
            conditions=tuple(name.strip() for name in args.conditions.split(",") if name.strip())
            if args.conditions
            else (),
            seeds=args.seeds,
            size=parse_size(args.size) if args.size else None,
            seconds=args.seconds if args.seconds is not None else DEFAULT_SECONDS,
            segment_frames=args.segment_frames if args.segment_frames is not None else DEFAULT_SEGMENT_FRAMES,
            ceiling=args.ceiling,
        )
        if args.ceiling and (renderer != "dit" or args.write_card):
            raise ValueError("--ceiling needs a checkpoint (the dit renderer's) and writes no card")
        if args.write_card and checkpoint is None:
            raise ValueError("--write-card needs a checkpoint: there is no card to write to")
        with _ProgressLines(enabled=sys.stderr.isatty()) as show:
            result = run_benchmark(settings, show)
        if args.write_card and checkpoint is not None:
            _write_card(checkpoint, result.to_dict())
    except EngineError as error:
        return fail(error.code, error.message, as_json=args.json)
    except SpeechError as error:  # espeak-ng missing or refusing: no clip can be made
        return fail(error.code, str(error), as_json=args.json)
    except ValueError as error:  # bad options, including the generator's own SynthError
        return fail(INVALID_OPTION, str(error), as_json=args.json)
    except OSError as error:  # the temporary folder for a clip's files
        return fail(OUTPUT_FAILED, f"cannot write the clips: {error.strerror or error}", as_json=args.json)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_table(result))
    return 0


def _write_card(checkpoint: Path, result: dict[str, Any]) -> None:
    """The benchmark's result (conditions, settings, summary; not the per-clip detail) in the model card."""
    import dataclasses

    from model.cards import read_model_card, write_model_card

    card = read_model_card(checkpoint)
    if card is None:
        raise ValueError(f"{checkpoint} has no model card to write the result to")
    # Not the per-clip detail, and the checkpoint by name: the card travels with the weights.
    kept = {key: value for key, value in result.items() if key != "clips"} | {"checkpoint": card.name}
    write_model_card(checkpoint, dataclasses.replace(card, eval=kept))


def shipped_checkpoint() -> Path | None:
    """The checkpoint `redub eval` scores when given neither option: the one shipped in the package."""
    from model.catalog import shipped_model_path

    path = shipped_model_path()
    return path if (path / "model_index.json").is_file() else None


def _model(renderer: str | None, checkpoint: Path | None) -> tuple[str, Path | None]:
    if renderer is not None:
        return renderer, None
    checkpoint = checkpoint or shipped_checkpoint()
    if checkpoint is None:
        raise ValueError(
            "the shipped checkpoint is not installed: give --checkpoint PATH or --renderer passthrough"
        )
    return "dit", checkpoint


def parse_size(text: str) -> tuple[int, int]:
    """(height, width) from '720p' or 'WIDTHxHEIGHT' (as everywhere in Redub: 1280x720)."""
    text = text.strip().lower()
    if text in _NAMED_SIZES:
        return _NAMED_SIZES[text]
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if match is None:
        raise ValueError(f"size must be one of {', '.join(_NAMED_SIZES)} or WIDTHxHEIGHT, got {text!r}")
    width, height = int(match[1]), int(match[2])
    if not (64 <= width <= 3840 and 64 <= height <= 2160) or width % 2 or height % 2:
        raise ValueError(f"size must be even, from 64x64 to 3840x2160, got {text}")
    return height, width


class _ProgressLines:
    """A tqdm bar over clips on a terminal; one line per step otherwise (both on stderr)."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._bar: Any = None

    def __enter__(self) -> Any:
        return self.show

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()

    def show(self, done: int, total: int, label: str) -> None:
        if not self._enabled:
            print(f"[{done}/{total}] {label}", file=sys.stderr, flush=True)
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="clip", file=sys.stderr)
        self._bar.update(done - self._bar.n)
        self._bar.set_description_str(label)
