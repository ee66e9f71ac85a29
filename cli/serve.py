"""`redub serve`: the HTTP API. With `--embedded`, also a real Celery worker beside it, on SQLite, a local
object directory and kombu's filesystem transport: the whole service on one machine, nothing to install."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import logging
import os
import secrets
import signal
import subprocess  # nosec B404
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="Run the HTTP API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="API processes.")
    parser.add_argument("--embedded", action="store_true", help="API + worker on SQLite and local files.")
    parser.add_argument("--data-dir", default="data", help="Where --embedded keeps its database and files.")
    parser.set_defaults(handler=_run)


def embedded_secrets(data_dir: Path) -> dict[str, str]:
    """The embedded install's own signing secrets, made on first start: the data directory is private to its
    owner (0700) and the file is 0600, created exclusively so two starts never disagree."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    path = data_dir / "secrets.json"
    fresh = {
        "REDUB_KEY_HASH_SECRET": secrets.token_hex(32),
        "REDUB_STORAGE_SIGNING_SECRET": secrets.token_hex(32),
    }
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        path.chmod(0o600)
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    with os.fdopen(descriptor, "w") as out:
        json.dump(fresh, out)
    if (data_dir / "redub.db").exists():
        # An install from before secrets.json hashed its keys with the public default secret.
        sys.stderr.write(
            f"New signing secrets in {path}: keys made earlier in {data_dir} no longer work; create new ones "
            "with `redub keys create`.\n"
        )
    return fresh


def _is_unspecified(host: str) -> bool:
    """0.0.0.0 or ::, "every interface": links then name the loopback address."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_secrets_in_use() -> list[str]:
    from app.core.config import DEVELOPMENT_SECRETS, get_settings

    settings = get_settings()
    return [
        name
        for name, value in (
            ("REDUB_KEY_HASH_SECRET", settings.key_hash_secret),
            ("REDUB_STORAGE_SIGNING_SECRET", settings.storage_signing_secret),
        )
        if value in DEVELOPMENT_SECRETS
    ]


def embedded_environment(data_dir: Path, host: str, port: int) -> dict[str, str]:
    """Settings for the embedded mode; anything already set in the environment wins."""
    queue = data_dir / "queue"
    queue.mkdir(parents=True, exist_ok=True)
    (data_dir / "objects").mkdir(parents=True, exist_ok=True)
    public_host = "127.0.0.1" if _is_unspecified(host) else host
    defaults = {
        "REDUB_DATABASE_URL": f"sqlite:///{data_dir / 'redub.db'}",
        "REDUB_BROKER_URL": "filesystem://",
        "REDUB_BROKER_FOLDER": str(queue),
        "REDUB_REDIS_URL": "memory://",
        "REDUB_STORAGE_BACKEND": "local",
        "REDUB_LOCAL_STORAGE_DIR": str(data_dir / "objects"),
        "REDUB_PUBLIC_BASE_URL": f"http://{public_host}:{port}",
        "REDUB_WORK_DIR": str(data_dir / "work"),
        "REDUB_BEAT_SCHEDULE_PATH": str(data_dir / "beat-schedule"),
        **embedded_secrets(data_dir),
    }
    (data_dir / "work").mkdir(parents=True, exist_ok=True)
    return {name: os.environ.get(name, value) for name, value in defaults.items()}


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    workers: list[subprocess.Popen[bytes]] = []
    if args.embedded:
        data_dir = Path(args.data_dir).resolve()
        os.environ.update(embedded_environment(data_dir, args.host, args.port))
        from app.core.config import get_settings

        get_settings.cache_clear()
    # Anyone who can reach the port could forge download links and key hashes with the public defaults.
    weak = default_secrets_in_use()
    if weak and not is_loopback(args.host):
        sys.stderr.write(
            f"Refusing to listen on {args.host}: {', '.join(weak)} still hold the public development "
            "defaults. Set them, or listen on 127.0.0.1.\n"
        )
        return 2
    if args.embedded:
        from app.core.migrate import upgrade

        upgrade()
        _print_first_key(data_dir)
        # Two workers, one task at a time each: webhooks never wait behind a dub, nor a dub behind a
        # slow webhook endpoint. sys.executable and a fixed argv, no shell (B603).
        workers = [
            subprocess.Popen(  # nosec B603
                [
                    sys.executable,
                    "-m",
                    "cli.main",
                    "worker",
                    f"--queues={queues}",
                    *extra,
                    "--loglevel=WARNING",
                ],
                env=os.environ.copy(),
                # Its own process group: the worker's beat child goes down with it.
                start_new_session=True,
            )
            for queues, extra in (("default,gpu", ["--beat"]), ("webhooks", []))
        ]
    # uvicorn re-raises SIGTERM after its shutdown; as SystemExit it still runs the cleanup below.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="warning",
        )
    finally:
        for worker in workers:
            stop_process_group(worker)
    return 0


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def stop_process_group(process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """SIGTERM the process's group (a warm Celery shutdown), then SIGKILL whatever is left."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _print_first_key(data_dir: Path) -> None:
    """A fresh embedded install gets one key, so the API can be tried at once. Its webhook secret goes to a
    0600 file, not to stderr, which logs and terminals keep."""
    from sqlalchemy import func, select

    from app.core.db import new_session
    from app.keys.service import create_key
    from app.models import ApiKey

    with new_session() as session:
        if session.scalar(select(func.count()).select_from(ApiKey)):
            return
        issued = create_key(session, "embedded", rate_limit_per_minute=0)
        session.commit()
    secret_path = data_dir / "webhook-secret"
    descriptor = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(issued.webhook_secret + "\n")
    sys.stderr.write(f"Embedded mode: API key {issued.key}\nIts webhook secret is in {secret_path}\n")
