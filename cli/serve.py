"""`redub serve`: the HTTP API. With `--embedded`, also a real Celery worker beside it, on SQLite, a local
object directory and kombu's filesystem transport: the whole service on one machine, nothing to install."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
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


def embedded_environment(data_dir: Path, host: str, port: int) -> dict[str, str]:
    """Settings for the embedded mode; anything already set in the environment wins."""
    queue = data_dir / "queue"
    queue.mkdir(parents=True, exist_ok=True)
    (data_dir / "objects").mkdir(parents=True, exist_ok=True)
    public_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
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
        from app.core.migrate import upgrade

        upgrade()
        _print_first_key()
        # Two workers, one task at a time each: webhooks never wait behind a dub, nor a dub behind a
        # slow webhook endpoint.
        workers = [
            subprocess.Popen(
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


def _print_first_key() -> None:
    """A fresh embedded install gets one key, so the API can be tried at once."""
    from sqlalchemy import func, select

    from app.core.db import new_session
    from app.keys.service import create_key
    from app.models import ApiKey

    with new_session() as session:
        if session.scalar(select(func.count()).select_from(ApiKey)):
            return
        issued = create_key(session, "embedded", rate_limit_per_minute=0)
        session.commit()
    sys.stderr.write(f"Embedded mode: API key {issued.key}\nWebhook secret {issued.webhook_secret}\n")
