"""The fault suite's stack (`make faults`; not part of `make test`): a PostgreSQL, a Redis and a SeaweedFS of
its own on free ports with throwaway data (the machine's shared servers are never touched), the API in a
uvicorn subprocess and real Celery workers, all pointed at them through `REDUB_*`. Each test breaks one part
while dubs run and checks what a customer sees afterwards; the stack is put back whole after each test."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import redub_client
from sqlalchemy import func, select

from tests.conftest import (
    ApiServer,
    Caller,
    MediaServer,
    PostgresServer,
    RedisServer,
    SeaweedServer,
    WorkerProcess,
    new_caller,
    reachable,
    wait_until,
)
from tests.media import decode_planes

TERMINAL = ("succeeded", "failed", "canceled")
# On top of the service tests' settings (tests/conftest.py's `service_env`: a 3 s stale-processing bound, a
# 1 s reaper, webhook retries after 0.5 s and 1 s).
FAULT_ENV = {
    "REDUB_DATABASE_RETRY_AFTER_S": "2",
    # One OpenMP thread per worker: two workers and the test share the machine's cores.
    "OMP_NUM_THREADS": "1",
}


# What each case measured, printed at the end of the run (README, "Faults survived").
_MEASURED: list[str] = []


@pytest.fixture
def measured(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Records a line of what this case measured, for the end of the run."""
    return lambda line: _MEASURED.append(f"{request.node.name}: {line}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _MEASURED:
        terminalreporter.section("measured")
        for line in _MEASURED:
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)


# --- Private servers, in place of the machine's (the root conftest's fixtures take these URLs) ----------


def _running(server: PostgresServer | RedisServer) -> Iterator[Any]:
    server.start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PostgresServer]:
    yield from _running(PostgresServer())


@pytest.fixture(scope="session")
def postgres_server(private_postgres: PostgresServer) -> str:
    return private_postgres.admin_url


@pytest.fixture(scope="session")
def private_redis() -> Iterator[RedisServer]:
    yield from _running(RedisServer())


@pytest.fixture(scope="session")
def redis_url(private_redis: RedisServer) -> str:
    return private_redis.url


@pytest.fixture(scope="session")
def private_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    server = SeaweedServer(tmp_path_factory.mktemp("weed"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(private_s3: SeaweedServer) -> dict[str, str]:
    return private_s3.settings


# --- The stack ----------------------------------------------------------------------------------------


@dataclass
class Stack:
    environment: dict[str, str]
    directory: Path
    postgres: PostgresServer
    redis: RedisServer
    s3: SeaweedServer
    api: ApiServer
    workers: list[WorkerProcess] = field(default_factory=list)

    def run_workers(self, count: int, **settings: str) -> list[WorkerProcess]:
        """Exactly `count` fresh workers with these extra settings; the first runs the beat (reaper, webhook
        sweep). Returns once each consumes."""
        self.stop_workers()
        for number in range(count):
            folder = self.directory / f"workers-{uuid.uuid4().hex[:6]}-{number}"
            folder.mkdir()
            worker = WorkerProcess(
                {**self.environment, **settings}, folder, name=f"fault{number}", beat=number == 0
            )
            worker.start()
            self.workers.append(worker)
        for worker in self.workers:
            wait_until(lambda worker=worker: " ready." in worker.log(), 120, f"worker {worker.name}")
        return self.workers

    def stop_workers(self) -> None:
        while self.workers:
            self.workers.pop().stop()

    def heal(self) -> None:
        """Every server up again, whatever the test left down."""
        if not reachable("127.0.0.1", self.postgres.port):
            self.postgres.start()
        if not reachable("127.0.0.1", self.redis.port):
            self.redis.start()
        if self.s3.process is None or self.s3.process.poll() is not None:
            self.s3.start()
        if self.api.process is None or self.api.process.poll() is not None:
            self.api.start()

    def client(self, caller: Caller, max_retries: int = 30) -> redub_client.Redub:
        """The published client, as an integrator runs it: it retries connection errors, 429 and 5xx with
        backoff (honouring Retry-After) under one Idempotency-Key per create."""
        return redub_client.Redub(
            api_key=caller.key, base_url=self.api.url, timeout=30, max_retries=max_retries
        )

    def log(self) -> str:
        return "\n".join(worker.log() for worker in self.workers)


@pytest.fixture(scope="session")
def stack_session(
    service_env: dict[str, str],
    private_postgres: PostgresServer,
    private_redis: RedisServer,
    private_s3: SeaweedServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    environment = {**service_env, **FAULT_ENV}
    directory = tmp_path_factory.mktemp("stack")
    api = ApiServer(environment, directory)
    api.start()
    stack = Stack(environment, directory, private_postgres, private_redis, private_s3, api)
    yield stack
    stack.stop_workers()
    api.stop()


@pytest.fixture
def stack(stack_session: Stack) -> Iterator[Stack]:
    stack_session.heal()
    yield stack_session
    stack_session.heal()
    stack_session.stop_workers()


# --- What the customer sees ---------------------------------------------------------------------------


def dub_body(media_server: MediaServer, slow_s: float = 0.0) -> dict[str, str]:
    """The small test clip and its new audio; `slow_s`: the video trickles out over that many seconds, so
    the dub is still downloading (processing) when a fault strikes."""
    video = f"slow/video.mp4?seconds={slow_s}" if slow_s else "video.mp4"
    return {"video": media_server.url(video), "audio": media_server.url("audio.m4a")}


def create_dubs(
    stack: Stack, caller: Caller, media_server: MediaServer, count: int, slow_s: float
) -> list[str]:
    """`count` dubs of the test clip; returns once a worker is dubbing one of them: the moment to strike."""
    with stack.client(caller) as client:
        job_ids = [str(client.dubs.create(**dub_body(media_server, slow_s=slow_s)).id) for _ in range(count)]
    wait_processing(job_ids, stack)
    return job_ids


def create_in_background(stack: Stack, caller: Caller, **media: Any) -> tuple[threading.Thread, list[str]]:
    """A client creating one dub from another thread, as an integrator would during an outage (it retries
    under one Idempotency-Key); the list receives the dub's id."""
    created: list[str] = []

    def create() -> None:
        with stack.client(caller) as client:
            created.append(str(client.dubs.create(**media).id))

    thread = threading.Thread(target=create)
    thread.start()
    return thread, created


def assert_each_succeeded_once(job_ids: list[str], stack: Stack, undisturbed: Output, directory: Path) -> str:
    """Every dub ends, succeeded, with one terminal event in its history and the undisturbed run's output;
    returns how long they took to end and how many attempts they needed."""
    began = time.monotonic()
    ended = wait_all_terminal(job_ids, 300, stack)
    assert set(ended.values()) == {"succeeded"}, stack.log()[-6000:]
    assert set(terminal_events(job_ids).values()) == {1}
    assert_outputs_match(job_ids, undisturbed, directory)
    return (
        f"{len(job_ids)} dubs succeeded, each once, output as undisturbed; the last ended "
        f"{time.monotonic() - began:.0f} s after the fault; dubs by attempts: {attempts_of(job_ids)}"
    )


def attempts_of(job_ids: list[str]) -> dict[int, int]:
    """How many dubs took 1, 2, 3… attempts."""
    from app.core.db import new_session
    from app.models import Job

    with new_session() as session:
        rows = session.scalars(select(Job.attempts).where(Job.id.in_([uuid.UUID(i) for i in job_ids])))
        return dict(sorted(Counter(int(attempts) for attempts in rows).items()))


def outcomes(job_ids: list[str]) -> dict[str, str]:
    from app.core.db import new_session
    from app.models import Job

    with new_session() as session:
        rows = session.execute(select(Job.id, Job.status).where(Job.id.in_([uuid.UUID(i) for i in job_ids])))
        return {
            str(job_id): str(status.value if hasattr(status, "value") else status) for job_id, status in rows
        }


def wait_processing(job_ids: list[str], stack: Stack, timeout_s: float = 120) -> None:
    """Returns once a worker is dubbing one of these: the moment to strike."""
    wait_until(
        lambda: "processing" in outcomes(job_ids).values(), timeout_s, f"a dub processing\n{stack.log()}"
    )


def wait_all_terminal(job_ids: list[str], timeout_s: float, stack: Stack) -> dict[str, str]:
    """Waits until every dub has ended (polled in SQL, so a test can wait through an API outage)."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        try:
            seen = outcomes(job_ids)
        except Exception:  # the database is still coming back
            seen = {}
        if len(seen) == len(job_ids) and all(status in TERMINAL for status in seen.values()):
            return seen
        time.sleep(0.5)
    raise AssertionError(f"not all dubs ended: {Counter(seen.values())}\n{stack.log()[-6000:]}")


def terminal_events(job_ids: list[str]) -> dict[str, int]:
    """How many terminal events (`succeeded`, `failed`, `canceled`) each dub's history holds."""
    from app.core.db import new_session
    from app.models import JobEvent

    with new_session() as session:
        rows = session.execute(
            select(JobEvent.job_id, func.count())
            .where(JobEvent.job_id.in_([uuid.UUID(i) for i in job_ids]), JobEvent.type.in_(TERMINAL))
            .group_by(JobEvent.job_id)
        )
        counted = {str(job_id): int(count) for job_id, count in rows}
    return {job_id: counted.get(job_id, 0) for job_id in job_ids}


def jobs_of(caller: Caller) -> int:
    from app.core.db import new_session
    from app.models import Job

    with new_session() as session:
        return int(session.scalar(select(func.count()).where(Job.account_id == caller.account_id)) or 0)


@dataclass(frozen=True)
class Output:
    """What a viewer gets from a dub's output: each video frame's time, the audio packets, the pictures."""

    video_pts: tuple[int, ...]
    audio_digest: str
    frames: list[np.ndarray]

    def assert_matches(self, other: Output) -> None:
        assert self.video_pts == other.video_pts, "frames missing, repeated or moved"
        assert self.audio_digest == other.audio_digest, "the audio differs"
        # x264 does not encode identical frames to identical bits from one dub to the next in one worker
        # process (measured: the frames handed to it hash the same, its options are the same, and decoded
        # outputs of one input still differ by up to 3.1 levels of 255 on average over a frame). So the
        # pictures are compared within that spread, not bit for bit: a wrong or shifted frame is far outside.
        for index, (mine, theirs) in enumerate(zip(self.frames, other.frames, strict=True)):
            difference = float(np.abs(mine.astype(np.int16) - theirs.astype(np.int16)).mean())
            assert difference <= ENCODER_SPREAD, f"frame {index} differs by {difference:.1f} levels"


ENCODER_SPREAD = 6.0


def output_of(job_id: str, directory: Path) -> Output:
    """The dub's output, downloaded from object storage as its link would give it."""
    from app.core.storage import get_storage, output_key

    path = directory / f"{job_id}.mp4"
    get_storage().download_file(output_key(uuid.UUID(job_id)), path)
    with av.open(str(path)) as container:
        audio = hashlib.sha256()
        for packet in container.demux(container.streams.audio[0]):
            if packet.size:
                audio.update(bytes(packet))
    with av.open(str(path)) as container:
        pts = tuple(int(frame.pts) for frame in container.decode(video=0))
    frames = [np.concatenate([plane.ravel() for plane in planes]) for planes in decode_planes(path)]
    return Output(pts, audio.hexdigest(), frames)


@pytest.fixture(scope="session")
def undisturbed(
    stack_session: Stack, media_server: MediaServer, tmp_path_factory: pytest.TempPathFactory
) -> Output:
    """The output of the test clip dubbed with nothing broken: what every disturbed run must match."""
    stack_session.run_workers(1)
    try:
        with stack_session.client(new_caller(rate_limit_per_minute=0, max_concurrent_jobs=0)) as client:
            dub = client.dubs.create(**dub_body(media_server))
        job_id = str(dub.id)
        assert wait_all_terminal([job_id], 120, stack_session) == {job_id: "succeeded"}, stack_session.log()
        return output_of(job_id, tmp_path_factory.mktemp("undisturbed"))
    finally:
        stack_session.stop_workers()


def assert_outputs_match(job_ids: list[str], undisturbed: Output, directory: Path) -> None:
    for job_id in job_ids:
        output_of(job_id, directory).assert_matches(undisturbed)


def errors_of(job_ids: list[str]) -> dict[str, tuple[str | None, bool | None]]:
    from app.core.db import new_session
    from app.models import Job

    with new_session() as session:
        rows = session.execute(
            select(Job.id, Job.error_code, Job.error_retryable).where(
                Job.id.in_([uuid.UUID(i) for i in job_ids])
            )
        )
        return {str(job_id): (code, retryable) for job_id, code, retryable in rows}
