"""`redub keys create|list|revoke|rotate-webhook-secret`: operators issue early-access keys with their limits.

`--data-dir DIR` works on the embedded mode's database (`redub serve --embedded --data-dir DIR`); without
it the command uses `REDUB_DATABASE_URL`, as the service does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli.output import fail


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="Issue, list and revoke API keys.")
    actions = parser.add_subparsers(dest="keys_command", required=True)

    create = actions.add_parser("create", help="Issue a key; prints it and its webhook secret once.")
    create.add_argument("name", help="Who the key is for.")
    create.add_argument("--json", action="store_true", help='Print {"key", "webhook_secret"}.')
    create.add_argument(
        "--rate-limit", type=int, metavar="PER_MINUTE", help="Requests per minute; 0 = no limit."
    )
    create.add_argument(
        "--max-concurrent", type=int, metavar="N", help="Unfinished dubs at once; 0 = no limit."
    )
    create.add_argument(
        "--max-duration-s", type=float, metavar="S", help="Longest media accepted; 0 = no limit."
    )
    create.add_argument("--account", type=uuid.UUID, help="Add the key to an existing account.")
    create.set_defaults(handler=_with_database(_create))

    listing = actions.add_parser("list", help="Every key: prefix, name, account, limits, revoked or not.")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_with_database(_list))

    revoke = actions.add_parser(
        "revoke", help="Revoke a key by its prefix (rdb_xxxxxxxxxxxx), the whole key, or its name if unique."
    )
    revoke.add_argument("key")
    revoke.set_defaults(handler=_with_database(_revoke))

    rotate = actions.add_parser(
        "rotate-webhook-secret", help="New webhook secret; the old one keeps signing for a day."
    )
    rotate.add_argument("key")
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(handler=_with_database(_rotate))

    for action in (create, listing, revoke, rotate):
        action.add_argument("--data-dir", type=Path, help="The embedded mode's data folder (default: none).")


def _with_database(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Point the settings at the embedded database when asked, and turn an unreachable database into one
    clear error instead of a driver traceback."""

    def run(args: argparse.Namespace) -> int:
        from sqlalchemy.exc import OperationalError

        from app.core.config import get_settings

        if args.data_dir is not None:
            from app.core.migrate import upgrade
            from cli.serve import embedded_environment

            os.environ.update(embedded_environment(args.data_dir.resolve(), "127.0.0.1", 8000))
            get_settings.cache_clear()
            upgrade()
        try:
            return handler(args)
        except OperationalError:
            url = get_settings().database_url
            return fail(
                "database_unreachable",
                f"Cannot reach the database at {_without_password(url)}. Set REDUB_DATABASE_URL (and the "
                "other REDUB_* settings the service uses), or pass --data-dir DIR for the embedded mode's "
                "database.",
                as_json=getattr(args, "json", False),
            )

    return run


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _non_negative(value: float | None, flag: str) -> None:
    if value is not None and value < 0:
        raise SystemExit(f"redub keys create: {flag} must be 0 or more")


def _create(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from app.core.db import new_session
    from app.keys.service import create_key
    from app.models import ApiKey

    _non_negative(args.rate_limit, "--rate-limit")
    _non_negative(args.max_concurrent, "--max-concurrent")
    _non_negative(args.max_duration_s, "--max-duration-s")
    with new_session() as session:
        if (
            args.account is not None
            and session.scalar(select(ApiKey.id).where(ApiKey.account_id == args.account).limit(1)) is None
        ):
            return fail(
                "account_not_found",
                f"no key belongs to account {args.account}; leave --account out to start a new account",
                as_json=args.json,
            )
        issued = create_key(
            session,
            args.name,
            account_id=args.account,
            rate_limit_per_minute=args.rate_limit,
            max_concurrent_jobs=args.max_concurrent,
            max_duration_s=args.max_duration_s,
        )
        session.commit()
        record = issued.record
        if args.json:
            print(json.dumps({"key": issued.key, "webhook_secret": issued.webhook_secret}))
        else:
            print(f"API key:        {issued.key}")
            print(f"Webhook secret: {issued.webhook_secret}")
            print(f"Account:        {record.account_id}")
            limits = (
                f"{record.rate_limit_per_minute}/min, {record.max_concurrent_jobs} concurrent, "
                f"{record.max_duration_s:g} s of media"
            )
            print(f"Limits:         {limits} (0 = unlimited)")
            print("Store both now: they are not shown again.")
    return 0


def _list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from app.core.db import new_session
    from app.models import ApiKey

    with new_session() as session:
        records = list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.prefix)))
        rows = [
            {
                "prefix": record.prefix,
                "name": record.name,
                "account_id": str(record.account_id),
                "created_at": record.created_at.isoformat(),
                "last_used_at": record.last_used_at.isoformat() if record.last_used_at else None,
                "revoked": record.revoked_at is not None,
                "rate_limit_per_minute": record.rate_limit_per_minute,
                "max_concurrent_jobs": record.max_concurrent_jobs,
                "max_duration_s": record.max_duration_s,
            }
            for record in records
        ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        state = "revoked" if row["revoked"] else "active"
        print(
            f"{row['prefix']}  {state:<7}  {row['name']}  account {row['account_id']}  "
            f"{row['rate_limit_per_minute']}/min, {row['max_concurrent_jobs']} concurrent"
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from app.core.db import new_session
    from app.keys.service import AmbiguousKeyName, revoke_key

    with new_session() as session:
        try:
            revoked = revoke_key(session, args.key)
        except AmbiguousKeyName as error:
            print(f"redub keys revoke: {error}", file=sys.stderr)
            return 1
        session.commit()
    if not revoked:
        print("No such active key.", file=sys.stderr)
        return 1
    print("Revoked. API processes stop accepting it within a second (their key cache).")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from app.core.db import new_session
    from app.keys.service import rotate_webhook_secret

    with new_session() as session:
        secret = rotate_webhook_secret(session, args.key)
        session.commit()
    if secret is None:
        print("No such key.", file=sys.stderr)
        return 1
    print(json.dumps({"webhook_secret": secret}) if args.json else f"Webhook secret: {secret}")
    return 0
