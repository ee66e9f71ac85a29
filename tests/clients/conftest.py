"""The client under test talks HTTP to a real API server (uvicorn, in a subprocess) with the same REDUB_*
settings, database, Redis, object storage and Celery worker as the rest of the service tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import httpx
import pytest
import redub_client

from tests.conftest import ROOT, Caller, WorkerProcess, _stop, free_port, wait_until


@pytest.fixture(scope="session")
def api_url(
    service_env: dict[str, str], celery_worker: WorkerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("api") / "uvicorn.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env={**os.environ, **service_env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the API server exited: {log_path.read_text()[-2000:]}")
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, 60, "API server")
    yield url
    _stop(process)
    log.close()


@pytest.fixture
def account(make_caller: Callable[..., Caller]) -> Caller:
    """A fresh account without limits: its list holds only this test's dubs."""
    return make_caller(rate_limit_per_minute=0, max_concurrent_jobs=0)


@pytest.fixture
def redub(api_url: str, account: Caller) -> Iterator[redub_client.Redub]:
    with redub_client.Redub(api_key=account.key, base_url=api_url, timeout=30) as client:
        yield client
