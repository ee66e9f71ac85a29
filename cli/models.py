"""`redub models`: the models a dub can name (`--model` here, `model` in the API), from their cards."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("models", help="list the dubbing models installed here")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from model.catalog import available_models, default_model

    default = default_model()
    rows = []
    for entry in available_models().values():
        card = entry.card
        rows.append(
            {
                "id": entry.id,
                "default": entry.id == default,
                "renderer": entry.renderer,
                "path": str(entry.path) if entry.path else None,
                "trained": card.trained if card else None,
                "description": entry.description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        marker = "*" if row["default"] else " "
        print(f"{marker} {row['id']:<24} {row['renderer']:<12} {row['description']}")
    return 0
