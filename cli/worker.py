"""`redub worker`: a Celery worker for the dubbing queues (one task at a time per process)."""

from __future__ import annotations

import argparse
import os
import socket
from typing import Any

DEFAULT_QUEUES = "default,gpu,webhooks"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("worker", help="Run a Celery worker.")
    parser.add_argument(
        "--queues", default=DEFAULT_QUEUES, help=f"Comma-separated (default {DEFAULT_QUEUES})."
    )
    parser.add_argument("--concurrency", type=int, default=1, help="Processes (GPU workers: 1 per GPU).")
    parser.add_argument("--beat", action="store_true", help="Also run the periodic reaper and webhook sweep.")
    parser.add_argument("--loglevel", default="INFO")
    parser.set_defaults(handler=_run)


def node_name() -> str:
    """celery@$HOSTNAME: what the compose health check pings (a container's HOSTNAME is its host name)."""
    return f"celery@{os.environ.get('HOSTNAME') or socket.gethostname()}"


def worker_argv(queues: str, concurrency: int, beat: bool, loglevel: str) -> list[str]:
    argv = ["worker", f"--queues={queues}", f"--concurrency={concurrency}", f"--loglevel={loglevel}"]
    argv.append(f"--hostname={node_name()}")
    # solo runs the task in the worker's own process: the model stays loaded between tasks.
    argv.append("--pool=solo" if concurrency == 1 else "--pool=prefork")
    if beat:
        argv.append("--beat")
    return argv


def _run(args: argparse.Namespace) -> int:
    from app.core.config import get_settings
    from app.core.logging import configure_logging
    from worker.celery_app import celery_app

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    celery_app.worker_main(worker_argv(args.queues, args.concurrency, args.beat, args.loglevel))
    return 0
