"""Terminal output shared by subcommands: machine-readable errors and a progress bar."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def fail(code: str, message: str, *, as_json: bool) -> int:
    """Report an error the caller can act on; exit status 1 (argparse's usage errors use 2)."""
    if as_json:
        print(json.dumps({"error": {"code": code, "message": message}}))
    else:
        print(f"redub: error: {message} [{code}]", file=sys.stderr)
    return 1


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, float], None]]:
    if not enabled:
        yield lambda stage, fraction: None
        return
    from tqdm import tqdm

    with tqdm(total=100, unit="%", file=sys.stderr, bar_format="{desc:<10} {bar} {percentage:3.0f}%") as bar:

        def show(stage: str, fraction: float) -> None:
            bar.set_description_str(stage)
            bar.update(round(fraction * 100) - bar.n)

        yield show
