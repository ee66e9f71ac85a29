"""`/metrics` on the real app (Postgres, Redis): requests by route template, jobs read at scrape time, queue
lengths, the token; and a dub run in this process adds what a worker counts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Caller, MediaServer

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient, **headers: str) -> Samples:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_route_template_and_status(client: TestClient, caller: Caller) -> None:
    dub_id = uuid.uuid4()
    before = scrape(client)
    assert client.get(f"/v1/dubs/{dub_id}", headers=caller.headers).status_code == 404
    assert client.get(f"/v1/dubs/{dub_id}").status_code == 401
    assert client.get(f"/no/such/{dub_id}").status_code == 404
    after = scrape(client)
    route = "/v1/dubs/{dub_id}"
    for status in ("404", "401"):
        key = ("redub_http_requests_total", (("method", "GET"), ("route", route), ("status", status)))
        assert after[key] - before.get(key, 0.0) == 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert (
        value(after, "redub_http_requests_total", **unmatched)
        - value(before, "redub_http_requests_total", **unmatched)
        == 1
    )
    # Latency: a histogram per route, its +Inf bucket counting every request.
    assert (
        value(after, "redub_http_request_duration_seconds_bucket", method="GET", route=route, le="+Inf") >= 2
    )
    # No id ever becomes a label (one series per id would grow without bound).
    assert not any(str(dub_id) in str(labels) for _, labels in after)


def test_unfinished_and_stale_jobs_queues_and_dependencies_are_read_at_scrape_time(
    client: TestClient, caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import func, select

    from app.core.config import get_settings
    from app.core.db import new_session
    from app.models import ApiKey, Job
    from app.models.base import utcnow

    def queued_count() -> int:
        with new_session() as session:
            return session.scalar(select(func.count()).where(Job.status == "queued")) or 0

    before = scrape(client)
    # Rows only (no task sent, so no worker takes them), queued for 10 minutes: stale past a 60 s threshold.
    monkeypatch.setattr(get_settings(), "stale_queued_after_s", 60.0)
    added = []
    with new_session() as session:
        key = session.scalars(select(ApiKey).where(ApiKey.prefix == caller.prefix)).one()
        for _ in range(3):
            job = Job(
                account_id=caller.account_id,
                api_key_id=key.id,
                status="queued",
                video_url="https://example.com/video.mp4",
                audio_url="https://example.com/audio.m4a",
                updated_at=utcnow() - timedelta(minutes=10),
            )
            session.add(job)
            session.flush()
            added.append(job.id)
        session.commit()
    try:
        # Other tests' dubs may start or end meanwhile: the gauge must lie between two counts taken around it.
        counted_before = queued_count()
        after = scrape(client)
        counted_after = queued_count()
        assert 3 <= min(counted_before, counted_after) <= value(after, "redub_jobs", status="queued")
        assert value(after, "redub_jobs", status="queued") <= max(counted_before, counted_after)
        stale = value(after, "redub_jobs_stale", status="queued") - value(
            before, "redub_jobs_stale", status="queued"
        )
        assert stale == 3
        assert ("redub_jobs", (("status", "processing"),)) in after
        assert value(after, "redub_dependency_up", dependency="postgres") == 1
        assert value(after, "redub_dependency_up", dependency="redis") == 1
        assert {"default", "gpu", "webhooks"} <= {
            dict(labels)["queue"] for name, labels in after if name == "redub_queue_length"
        }
        assert ("redub_webhook_deliveries_pending", ()) in after
    finally:
        with new_session() as session:
            for job_id in added:
                session.delete(session.get(Job, job_id))
            session.commit()


def test_queue_lengths_count_every_priority_list_of_a_queue(service_env: dict[str, str]) -> None:
    import redis

    from app.core.config import get_settings
    from app.core.queue import queue_lengths

    # A queue of this test's own: a message put in a queue a worker reads would be taken (and, not being
    # a task, stop that worker).
    name = f"metrics-test-{uuid.uuid4().hex}"
    settings = get_settings()
    connection = redis.Redis.from_url(settings.redis_url)
    lists = [f"{settings.redis_key_prefix}{name}", f"{settings.redis_key_prefix}{name}\x06\x166"]
    try:
        connection.rpush(lists[0], "a", "b")
        connection.rpush(lists[1], "c")
        assert queue_lengths([name, "nothing-here"]) == {name: 3, "nothing-here": 0}
    finally:
        connection.delete(*lists)


@pytest.fixture
def metrics_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from app.core.config import get_settings

    token = uuid.uuid4().hex
    monkeypatch.setattr(get_settings(), "metrics_token", token)
    yield token


def test_a_metrics_token_guards_the_endpoint(client: TestClient, metrics_token: str) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert scrape(client, Authorization=f"Bearer {metrics_token}")


def test_metrics_stay_out_of_the_openapi_document(client: TestClient) -> None:
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_a_dub_adds_stage_seconds_frames_segments_and_its_outcome(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    """The worker's code run in this process (single-process mode): the API's /metrics shows its counts."""
    from sqlalchemy import select

    from app.core.db import new_session
    from app.models import ApiKey, Job
    from worker.tasks.processing import run_job

    with new_session() as session:
        key = session.scalars(select(ApiKey).where(ApiKey.prefix == caller.prefix)).one()
        job = Job(
            account_id=caller.account_id,
            api_key_id=key.id,
            status="queued",
            video_url=media_server.url("video.mp4"),
            audio_url=media_server.url("audio.m4a"),
            model="passthrough",
        )
        failing = Job(
            account_id=caller.account_id,
            api_key_id=key.id,
            status="queued",
            video_url=media_server.url("status/404"),
            audio_url=media_server.url("audio.m4a"),
            model="passthrough",
        )
        session.add_all([job, failing])
        session.commit()
        job_id, failing_id = job.id, failing.id
    before = scrape(client)
    assert run_job(job_id) == "succeeded"
    assert run_job(failing_id) == "failed"
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("redub_jobs_finished_total", status="succeeded") == 1
    assert grew("redub_jobs_finished_total", status="failed") == 1
    assert grew("redub_fetch_failures_total", reason="fetch_failed") == 1
    # Passthrough: no analysis and no render stage (no face to re-draw); its frames still go through the loop.
    for stage in ("fetch", "probe", "decode", "encode", "upload"):
        assert grew("redub_stage_seconds_count", stage=stage) >= 1, stage
    assert grew("redub_frames_rendered_total") > 0
    assert grew("redub_segments_rendered_total") >= 1
    assert value(after, "redub_worker_frames_per_second") > 0
