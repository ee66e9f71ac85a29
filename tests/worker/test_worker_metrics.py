"""A real `redub worker` with two prefork processes and Prometheus' multiprocess mode: what either process
counted is served, summed, on the worker's metrics port; its log lines are JSON naming the job and account."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import redis
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from tests.conftest import ROOT, Caller, MediaServer, free_port, run_id, wait_until


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_prefork_worker_serves_the_counts_of_all_its_processes(
    service_env: dict[str, str], caller: Caller, media_server: MediaServer, tmp_path: Path
) -> None:
    from app.core.config import get_settings
    from app.core.db import new_session
    from app.core.queue import QUEUE_GPU, TASK_PROCESS_DUB
    from app.models import ApiKey, Job

    # Queues of its own (another key prefix), so the session's worker never takes these dubs.
    prefix = f"redub_test_{run_id()}_metrics_{uuid.uuid4().hex[:6]}:"
    port = free_port()
    multiprocess_dir = tmp_path / "prometheus"
    multiprocess_dir.mkdir()
    log_path = tmp_path / "worker.log"
    job_ids: list[uuid.UUID] = []
    environment = {
        **os.environ,
        **service_env,
        "REDUB_REDIS_KEY_PREFIX": prefix,
        "REDUB_METRICS_PORT": os.environ.get("XPORT", str(port)),
        "PROMETHEUS_MULTIPROC_DIR": str(multiprocess_dir),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker", "--queues", QUEUE_GPU, "--concurrency", "2"],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}/metrics"

        def serving() -> bool:
            assert process.poll() is None, log_path.read_text()[-3000:]
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(serving, 60, "the worker's metrics port")
        with new_session() as session:
            key = session.scalars(select(ApiKey).where(ApiKey.prefix == caller.prefix)).one()
            jobs = [
                Job(
                    account_id=caller.account_id,
                    api_key_id=key.id,
                    status="queued",
                    video_url=media_server.url("video.mp4"),
                    audio_url=media_server.url("audio.m4a"),
                    model="passthrough",
                )
                for _ in range(2)
            ]
            session.add_all(jobs)
            session.commit()
            job_ids.extend(job.id for job in jobs)
        producer = Celery("metrics-test", broker=get_settings().celery_broker_url)
        producer.conf.broker_transport_options = {"global_keyprefix": prefix}
        for job_id in job_ids:
            producer.send_task(TASK_PROCESS_DUB, args=[str(job_id)], queue=QUEUE_GPU)

        def finished() -> bool:
            with new_session() as session:
                statuses = session.scalars(select(Job.status).where(Job.id.in_(job_ids))).all()
            return all(status == "succeeded" for status in statuses)

        wait_until(finished, 90, "both dubs")
        samples = _scrape(url)
        assert samples[("redub_jobs_finished_total", (("status", "succeeded"),))] == 2
        assert samples[("redub_stage_seconds_count", (("stage", "upload"),))] == 2
        assert samples[("redub_frames_rendered_total", ())] > 0
        # Per process (multiprocess mode labels a live gauge with its pid): the process that rendered last.
        speeds = [value for (name, _), value in samples.items() if name == "redub_worker_frames_per_second"]
        assert speeds and max(speeds) > 0
    finally:
        from cli.serve import stop_process_group

        stop_process_group(process)
        broker = redis.Redis.from_url(service_env["REDUB_REDIS_URL"])
        for key in broker.scan_iter(f"{prefix}*"):
            broker.delete(key)
        with new_session() as session:
            for job_id in job_ids:
                session.delete(session.get(Job, job_id))
            session.commit()
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    started = [line for line in lines if line["message"] == "job started"]
    assert {line["job_id"] for line in started} == {str(job_id) for job_id in job_ids}
    assert all(line["account_id"] == str(caller.account_id) for line in started)
    assert all(line["task"] == TASK_PROCESS_DUB and line["task_id"] for line in started)
    assert caller.key not in log_path.read_text() and caller.webhook_secret not in log_path.read_text()
