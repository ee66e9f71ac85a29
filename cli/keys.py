"""`redub keys create|revoke|rotate-webhook-secret`: operators issue early-access keys with their limits."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="Issue and revoke API keys.")
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
    create.set_defaults(handler=_create)

    revoke = actions.add_parser("revoke", help="Revoke a key (by its prefix rdb_xxxxxxxxxxxx or whole key).")
    revoke.add_argument("key")
    revoke.set_defaults(handler=_revoke)

    rotate = actions.add_parser(
        "rotate-webhook-secret", help="New webhook secret; the old one keeps signing for a day."
    )
    rotate.add_argument("key")
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(handler=_rotate)


def _non_negative(value: float | None, flag: str) -> None:
    if value is not None and value < 0:
        raise SystemExit(f"redub keys create: {flag} must be 0 or more")


def _create(args: argparse.Namespace) -> int:
    from app.core.db import new_session
    from app.keys.service import create_key

    _non_negative(args.rate_limit, "--rate-limit")
    _non_negative(args.max_concurrent, "--max-concurrent")
    _non_negative(args.max_duration_s, "--max-duration-s")
    with new_session() as session:
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


def _revoke(args: argparse.Namespace) -> int:
    from app.core.db import new_session
    from app.keys.service import revoke_key

    with new_session() as session:
        revoked = revoke_key(session, args.key)
        session.commit()
    if not revoked:
        print("No such active key.", file=sys.stderr)
        return 1
    print("Revoked.")
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
