"""A dub whose input server stalls, run in this process against a real loopback server: the cancel poll
reaches a download that brings no bytes, a stalled download gets no heartbeat (so the reaper takes the job
back), and the minimum transfer rate is the setting's."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Caller

_MP4_HEAD = (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 12) * 32  # 768 bytes that sniff as media
_HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 1000000\r\n\r\n"


class StallServer:
    """Answers one request with headers and the first bytes of an MP4, then sends nothing until closed."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/video.mp4"
        self.prefix_sent = threading.Event()
        self.hung_up = threading.Event()  # the client closed the connection
        self.release = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        with connection:
            connection.recv(65536)
            connection.sendall(_HEADERS + _MP4_HEAD)
            self.prefix_sent.set()
            connection.settimeout(0.1)
            while not self.release.is_set():
                try:
                    if connection.recv(1) == b"":
                        self.hung_up.set()
                        return
                except TimeoutError:
                    continue
                except OSError:
                    self.hung_up.set()
                    return

    def close(self) -> None:
        self.release.set()
        self.listener.close()


@pytest.fixture
def stall_server() -> Iterator[StallServer]:
    server = StallServer()
    yield server
    server.close()


@pytest.fixture
def settings_env(
    monkeypatch: pytest.MonkeyPatch, service_env: dict[str, str]
) -> Iterator[Callable[..., None]]:
    """Sets REDUB_* values for the run in this process; restored after the test."""
    from app.core.config import get_settings

    def apply(**values: Any) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"REDUB_{name.upper()}", str(value))
        get_settings.cache_clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()


def _queued_job(caller: Caller, video_url: str, audio_url: str) -> uuid.UUID:
    """A queued job row with no task sent, so only the run this test starts takes it."""
    from app.core.db import new_session
    from app.keys.service import authenticate_in_new_session
    from app.models import Job, JobStatus

    key = authenticate_in_new_session(caller.key)
    assert key is not None
    with new_session() as session:
        job = Job(
            account_id=key.account_id,
            api_key_id=key.id,
            status=JobStatus.QUEUED,
            video_url=video_url,
            audio_url=audio_url,
            webhook_events=[],
            progress_stage="queued",
        )
        session.add(job)
        session.commit()
        return job.id


class Run:
    """`run_job` in a thread of this process; `result` once it returns."""

    def __init__(self, job_id: uuid.UUID) -> None:
        from worker.tasks.processing import run_job

        self.result: str | None = None
        self.thread = threading.Thread(target=lambda: setattr(self, "result", run_job(job_id)), daemon=True)
        self.thread.start()

    def wait(self, timeout_s: float = 60) -> str | None:
        self.thread.join(timeout_s)
        return self.result


def _job(job_id: uuid.UUID) -> Any:
    from app.core.db import new_session
    from app.models import Job

    with new_session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def test_a_cancel_stops_a_download_that_brings_no_bytes(
    caller: Caller, stall_server: StallServer, settings_env: Callable[..., None]
) -> None:
    from app.core.db import new_session
    from app.dubs import repository

    # Neither the deadline nor the rate floor can end this download: only the cancel poll can.
    settings_env(fetch_timeout_s=600, fetch_min_bytes_per_s=0)
    job_id = _queued_job(caller, stall_server.url, stall_server.url)
    run = Run(job_id)
    assert stall_server.prefix_sent.wait(30)
    # Give the run a moment to take in the first bytes, so the cancel cannot ride on a chunk's progress
    # callback (were the run slower, the test would only prove less, never fail wrongly).
    time.sleep(1.0)
    with new_session() as session:
        assert repository.request_cancel(session, job_id)
        session.commit()
    assert run.wait() == "canceled"
    assert stall_server.hung_up.wait(10)
    job = _job(job_id)
    assert job.status == "canceled" and job.error_code == "canceled"


def test_a_stalled_download_gets_no_heartbeat_and_is_taken_back(
    caller: Caller, stall_server: StallServer, settings_env: Callable[..., None]
) -> None:
    from app.core.config import get_settings
    from app.core.db import new_session
    from app.dubs import repository
    from app.models.base import utcnow

    settings_env(fetch_timeout_s=600, fetch_min_bytes_per_s=0)
    stale_after_s = get_settings().stale_processing_after_s
    job_id = _queued_job(caller, stall_server.url, stall_server.url)
    run = Run(job_id)
    assert stall_server.prefix_sent.wait(30)
    # With a heartbeat every stale/4 s the job would never look stale; without one it does within 2 x stale.
    deadline = time.monotonic() + 10 * stale_after_s
    taken_back = False
    while time.monotonic() < deadline and not taken_back:
        with new_session() as session:
            stale = repository.stale_processing(session, utcnow() - timedelta(seconds=stale_after_s))
            if any(job.id == job_id for job in stale):
                assert repository.requeue(session, job_id, 1)
                session.commit()
                taken_back = True
            # A test worker's reaper (beat) may have taken it back first.
            taken_back = taken_back or _job(job_id).status != "processing" or _job(job_id).attempts > 1
        time.sleep(0.2)
    assert taken_back, "the stalled download kept its heartbeat fresh"
    # The run sees at its next cancel poll that the job is no longer its own, and hangs up.
    assert run.wait() == "lost"
    assert stall_server.hung_up.wait(10)


def test_a_download_below_the_configured_rate_fails_the_job(
    caller: Caller, stall_server: StallServer, settings_env: Callable[..., None]
) -> None:
    settings_env(fetch_timeout_s=600, fetch_min_bytes_per_s=4096, fetch_rate_window_s=1)
    job_id = _queued_job(caller, stall_server.url, stall_server.url)
    assert Run(job_id).wait() == "failed"
    job = _job(job_id)
    assert job.error_code == "fetch_timeout" and job.error_retryable is True
    assert job.error_message.startswith("video_url: ") and "too slow" in job.error_message
