"""`redub train CONFIG --run-dir DIR`: train a dubbing pipeline on the synthetic corpus, resumably.

Run it again with the same arguments after any stop: every stage continues from its last checkpoint. Under
`accelerate launch` the same command trains on many GPUs and nodes (DDP), unchanged.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from cli.output import fail


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("train", help="train a dubbing pipeline (resumes where it stopped)")
    parser.add_argument("config", type=Path, help="the run's settings (TOML)")
    parser.add_argument("--run-dir", type=Path, required=True, help="where the run keeps everything")
    parser.add_argument(
        "--stages",
        default="all",
        help="comma-separated subset of corpus,vae,audio,latents,probe,dit,decoder,export "
        "(default: all, in order)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--finish-now",
        action="store_true",
        help="end the DiT stage at its last checkpoint (the card records the steps taken), then go on",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (default: all cores; 1 is faster on a core shared with other work)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from model.training.config import STAGES, TrainConfig
    from model.training.run import RunMismatch, train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.threads is not None:
        import torch

        if args.threads < 1:
            return fail("invalid_option", "--threads must be at least 1", as_json=False)
        torch.set_num_threads(args.threads)
    stages = STAGES if args.stages == "all" else tuple(name.strip() for name in args.stages.split(","))
    try:
        config = TrainConfig.load(args.config)
        pipeline_dir = train(
            config, args.run_dir, stages, progress=not args.quiet, finish_now=args.finish_now
        )
    except FileNotFoundError as error:
        return fail("not_found", str(error), as_json=False)
    except (RunMismatch, ValueError, TypeError) as error:
        return fail("invalid_option", str(error), as_json=False)
    if "export" in stages:
        print(pipeline_dir)
    else:
        print(args.run_dir, file=sys.stdout)
    return 0
