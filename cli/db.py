"""`redub db upgrade`: apply database migrations."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("db", help="Database migrations.")
    actions = parser.add_subparsers(dest="db_command", required=True)
    upgrade = actions.add_parser("upgrade", help="Migrate the database to the newest schema.")
    upgrade.add_argument("--revision", default="head", help="Target revision (default: head).")
    upgrade.set_defaults(handler=_upgrade)


def _upgrade(args: argparse.Namespace) -> int:
    from app.core.migrate import upgrade

    upgrade(args.revision)
    return 0
