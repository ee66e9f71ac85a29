"""The `redub` console script: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Callable, Sequence

from cli import analyze, db, dub, keys, models, serve, synth, train, worker
from cli import eval as evaluation  # not `eval`: that would shadow the builtin

# Each subcommand module exposes `register(subparsers)`, which adds its parser and sets `handler`.
# Modules import their heavy dependencies (torch, the engine) inside the handler, so `redub --help` is fast.
SUBCOMMANDS = [dub, analyze, synth, train, evaluation, models, serve, worker, keys, db]


def _version() -> str:
    try:
        return importlib.metadata.version("redub")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="redub", description="Dub video: re-render lips to new audio.")
    parser.add_argument("--version", action="version", version=f"redub {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
