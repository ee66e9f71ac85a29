"""The ETA of queued and running dubs, from the dubs that succeeded last."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from fastapi.testclient import TestClient

from app.dubs.eta import RECENT_DUBS, History, estimate
from tests.conftest import Caller

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _succeeded(processing_s: float, video_s: float | None) -> SimpleNamespace:
    media = {"video": {"duration_s": video_s}} if video_s is not None else None
    return SimpleNamespace(started_at=NOW, finished_at=NOW + timedelta(seconds=processing_s), media=media)


def test_the_history_takes_medians_of_time_and_of_time_per_video_second() -> None:
    history = History.from_rows(
        [_succeeded(40, 10), _succeeded(10, 10), _succeeded(90, 30), _succeeded(30, None)], processing_now=2
    )
    assert history.dubs == 4
    assert history.median_processing_s == 35  # of 10, 30, 40, 90
    assert history.median_s_per_video_s == 3  # of 1, 3, 4 (the dub without media has no rate)


def test_a_running_dub_has_its_videos_expected_time_left_and_none_once_overdue() -> None:
    history = History(dubs=5, median_processing_s=50, median_s_per_video_s=4, processing_now=1)
    started = NOW - timedelta(seconds=10)
    probed = estimate(
        "processing",
        position=None,
        started_at=started,
        media={"video": {"duration_s": 5}},
        history=history,
        now=NOW,
    )
    assert probed is not None and probed.seconds_left == 10 and probed.based_on_dubs == 5
    assert probed.completes_at == NOW + timedelta(seconds=10)
    not_probed = estimate(
        "processing", position=None, started_at=started, media=None, history=history, now=NOW
    )
    assert not_probed is not None and not_probed.seconds_left == 40
    overdue = estimate(
        "processing",
        position=None,
        started_at=NOW - timedelta(seconds=21),
        media={"video": {"duration_s": 5}},
        history=history,
        now=NOW,
    )
    assert overdue is None


def test_a_queued_dub_waits_for_those_ahead_shared_over_the_busy_slots() -> None:
    two_slots = History(dubs=3, median_processing_s=60, median_s_per_video_s=None, processing_now=2)
    found = estimate("queued", position=3, started_at=None, media=None, history=two_slots, now=NOW)
    assert found is not None and found.seconds_left == 3 * 60 / 2 + 60
    idle = History(dubs=3, median_processing_s=60, median_s_per_video_s=None, processing_now=0)
    found = estimate("queued", position=1, started_at=None, media=None, history=idle, now=NOW)
    assert found is not None and found.seconds_left == 120


def test_no_history_or_an_ended_dub_has_no_eta() -> None:
    empty = History.from_rows([], processing_now=0)
    assert estimate("queued", position=1, started_at=None, media=None, history=empty, now=NOW) is None
    history = History(dubs=1, median_processing_s=60, median_s_per_video_s=None, processing_now=0)
    for status in ("succeeded", "failed", "canceled"):
        assert estimate(status, position=None, started_at=NOW, media=None, history=history, now=NOW) is None


def _poll_until(client: TestClient, caller: Caller, dub_id: str, check: Any, timeout_s: float = 10) -> Any:
    """Poll until `check(job)` holds (a direct database write reaches the poll cache asynchronously)."""
    deadline = time.monotonic() + timeout_s
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/dubs/{dub_id}", headers=caller.headers).json()
        if check(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"never held: {job}")


def test_polls_show_an_eta_while_queued_and_running(
    client: TestClient, caller: Caller, dub_history: Callable[..., list[uuid.UUID]]
) -> None:
    from sqlalchemy import select

    from app.core.db import new_session
    from app.models import ApiKey, Job
    from app.models.base import utcnow

    # The newest succeeded dubs anywhere: each took 40 s for 10 s of video (4 s a second).
    dub_history(RECENT_DUBS, processing_s=40, video_s=10)
    with new_session() as session:
        key = session.scalars(select(ApiKey).where(ApiKey.prefix == caller.prefix)).one()
        # Queued without a task: no worker takes it.
        queued_job = Job(
            account_id=caller.account_id,
            api_key_id=key.id,
            status="queued",
            video_url="https://example.com/video.mp4",
            audio_url="https://example.com/audio.m4a",
        )
        session.add(queued_job)
        session.commit()
        dub_id = queued_job.id
    try:
        queued = client.get(f"/v1/dubs/{dub_id}", headers=caller.headers).json()
        assert queued["status"] == "queued", queued
        eta = queued["eta"]
        assert eta["based_on_dubs"] == RECENT_DUBS
        # Its own 40 s plus its place in the queue, shared over however many dubs run now.
        assert 40 < eta["seconds_left"] <= (queued["queue_position"] + 1) * 40
        completes_at = datetime.fromisoformat(eta["completes_at"])
        assert abs((completes_at - utcnow()).total_seconds() - eta["seconds_left"]) < 5

        with new_session() as session:
            row = session.get(Job, dub_id)
            assert row is not None
            row.status, row.started_at = "processing", utcnow() - timedelta(seconds=10)
            row.media = {"video": {"duration_s": 5.0}}  # 20 s expected
            session.commit()
        running = _poll_until(client, caller, str(dub_id), lambda job: job["status"] == "processing")
        assert running["eta"]["based_on_dubs"] == RECENT_DUBS
        assert 5 < running["eta"]["seconds_left"] <= 10

        with new_session() as session:
            row = session.get(Job, dub_id)
            assert row is not None
            row.started_at = utcnow() - timedelta(seconds=25)  # longer than expected: nothing to say
            session.commit()
        _poll_until(client, caller, str(dub_id), lambda job: job["eta"] is None)
        with new_session() as session:
            row = session.get(Job, dub_id)
            assert row is not None
            row.status, row.finished_at = "canceled", utcnow()
            session.commit()
        ended = _poll_until(client, caller, str(dub_id), lambda job: job["status"] == "canceled")
        assert ended["eta"] is None and ended["queue_position"] is None
    finally:
        with new_session() as session:
            session.delete(session.get(Job, dub_id))
            session.commit()
