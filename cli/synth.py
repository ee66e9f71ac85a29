"""`redub synth OUT_DIR`: write synthetic talking-face pairs (source, dub audio, exact truth) for training and
evaluation; one folder per pair, OUT_DIR/<condition>/<seed>/."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from cli.output import fail, progress_bar

_NAMED_SIZES = {"360p": (360, 640), "480p": (480, 854), "720p": (720, 1280), "1080p": (1080, 1920)}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("synth", help="write synthetic talking-face pairs with exact ground truth")
    parser.add_argument("out_dir", type=Path, help="folder to write OUT_DIR/<condition>/<seed>/ into")
    parser.add_argument("--split", default="train", help="train (default) or heldout")
    parser.add_argument("--conditions", default="all", help="all (default) or a comma list, e.g. clean,dark")
    parser.add_argument("--seeds", default="0", help="a range A-B (inclusive), a list 1,4,9, or one seed N")
    parser.add_argument("--size", default="256x256", help="HxW (height x width) or 360p/480p/720p/1080p")
    parser.add_argument("--seconds", type=float, default=3.0, help="clip length (default 3)")
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate (default 25)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run)


class _BadOption(ValueError):
    pass


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        found = re.fullmatch(r"(\d+)-(\d+)", part)
        if found:
            first, last = int(found.group(1)), int(found.group(2))
            if last < first:
                raise _BadOption(f"--seeds range {part!r} ends before it starts")
            seeds.extend(range(first, last + 1))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise _BadOption(f"--seeds must be A-B, a comma list or one number, not {text!r}")
    if len(seeds) > 100_000:
        raise _BadOption("--seeds names more than 100000 seeds")
    return list(dict.fromkeys(seeds))


def parse_size(text: str) -> tuple[int, int]:
    if text.lower() in _NAMED_SIZES:
        return _NAMED_SIZES[text.lower()]
    found = re.fullmatch(r"(\d+)x(\d+)", text.lower())
    if not found:
        raise _BadOption(
            f"--size must be HxW (e.g. 256x256) or one of {', '.join(_NAMED_SIZES)}, not {text!r}"
        )
    height, width = int(found.group(1)), int(found.group(2))
    if not (64 <= height <= 4096 and 64 <= width <= 4096):
        raise _BadOption(f"--size sides must be from 64 to 4096 pixels, not {text!r}")
    return height, width


def parse_conditions(text: str, known: tuple[str, ...]) -> list[str]:
    if text == "all":
        return list(known)
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in known]
    if unknown or not chosen:
        raise _BadOption(
            f"unknown condition(s) {', '.join(unknown) or text!r}; known: all, {', '.join(known)}"
        )
    return list(dict.fromkeys(chosen))


def _usage_error(message: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": {"code": "invalid_option", "message": message}}))
    else:
        print(f"redub synth: error: {message} [invalid_option]", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from model.synth import CONDITIONS, SPLITS, make_pair, write_pair
    from model.synth.speech import SpeechError

    try:
        if args.split not in SPLITS:
            raise _BadOption(f"--split must be train or heldout, not {args.split!r}")
        conditions = parse_conditions(args.conditions, CONDITIONS)
        seeds = parse_seeds(args.seeds)
        size = parse_size(args.size)
        if not 0.5 <= args.seconds <= 60.0:
            raise _BadOption(f"--seconds must be between 0.5 and 60, not {args.seconds}")
        if not 1.0 <= args.fps <= 120.0:
            raise _BadOption(f"--fps must be between 1 and 120, not {args.fps}")
        if args.out_dir.exists() and not args.out_dir.is_dir():
            raise _BadOption(f"{args.out_dir} exists and is not a folder")
    except _BadOption as error:
        return _usage_error(str(error), args.json)
    pairs = []
    started = time.perf_counter()
    total = len(conditions) * len(seeds)
    with progress_bar(enabled=not args.json and sys.stderr.isatty()) as show:
        for number, (condition, seed) in enumerate((c, s) for c in conditions for s in seeds):
            folder = args.out_dir / condition / str(seed)
            began = time.perf_counter()
            try:
                pair = make_pair(
                    condition, seed, args.split, size=size, seconds=args.seconds, frame_rate=args.fps
                )
                made = time.perf_counter()
                write_pair(pair, folder)
            except SpeechError as error:
                return fail(error.code, str(error), as_json=args.json)
            except OSError as error:
                return fail(
                    "output_failed", f"cannot write {folder}: {error.strerror or error}", as_json=args.json
                )
            meta = pair.meta or {}
            pairs.append(
                {
                    "condition": condition,
                    "seed": seed,
                    "path": str(folder),
                    "frames": len(pair.target.frames),
                    "source_text": meta.get("source", {}).get("text", ""),
                    "target_text": meta.get("target", {}).get("text", ""),
                    "make_s": round(made - began, 3),
                    "write_s": round(time.perf_counter() - made, 3),
                }
            )
            show(f"{condition} {seed}", (number + 1) / total)
    summary = {
        "out_dir": str(args.out_dir),
        "split": args.split,
        "size": list(size),
        "seconds": args.seconds,
        "fps": args.fps,
        "count": len(pairs),
        "conditions": conditions,
        "seeds": [seeds[0], seeds[-1]] if seeds else [],
        "total_s": round(time.perf_counter() - started, 3),
        "pairs": pairs,
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    print(f"{len(pairs)} pairs ({args.split}, {size[0]}x{size[1]}, {args.seconds:g} s) in {args.out_dir} "
          f"in {summary['total_s']:.1f} s")  # fmt: skip
    for item in pairs:
        print(f"  {item['condition']}/{item['seed']}: {item['make_s']:.2f} s + write {item['write_s']:.2f} s")
    return 0
