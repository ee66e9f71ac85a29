"""One dub fanned out over real Celery worker processes (REDUB_FANOUT): segments on the `gpu` queue, chunks
of the assembly on the default queue, then one join; the same frames from one worker or two; progress by
segments; cancel and deadline end the job once; a chunk delivered twice runs once; a chunk failing fails it.

The shipped model renders (passthrough has no segment to fan out), one torch thread per worker; these dubs
keep the API's default (not lossless) encoding, whose frames are as repeatable as its input."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from model.catalog import SHIPPED_MODEL
from model.synth import make_pair, write_pair
from tests.conftest import Caller, MediaServer, WebhookReceiver, WorkerProcess, wait_for_status
from tests.media import decode_planes

TERMINAL = {"succeeded", "failed", "canceled"}
FANOUT_ENV = {
    "REDUB_FANOUT": "true",
    # 35 frames in 17-frame segments: three segments to spread over the workers; the assembly in three
    # chunks (frames 0-11, 12-22, 23-34) and a join.
    "REDUB_SEGMENT_FRAMES": "17",
    "REDUB_ASSEMBLY_CHUNK_FRAMES": "12",
    "OMP_NUM_THREADS": "1",
}


class Fleet:
    """Worker processes for fanned-out dubs; the first one runs the beat (the reaper)."""

    def __init__(self, environment: dict[str, str], directory: Path) -> None:
        self.environment = environment
        self.directory = directory
        self.workers: list[WorkerProcess] = []

    def run(self, count: int, queues: list[str] | None = None, **settings: str) -> None:
        """Exactly `count` workers with these extra settings (each on every queue, or on `queues[i]`)."""
        environment = {**self.environment, **FANOUT_ENV, **settings}
        wanted = queues or ["default,gpu,webhooks"] * count
        if [(worker.environment, worker.queues) for worker in self.workers] != [
            (environment, queue) for queue in wanted[: len(self.workers)]
        ]:
            self.stop()
        while len(self.workers) > count:
            self.workers.pop().stop()
        while len(self.workers) < count:
            number = len(self.workers)
            folder = self.directory / f"w{number}"
            folder.mkdir(exist_ok=True)
            worker = WorkerProcess(
                environment, folder, name=f"fanout{number}", beat=number == 0, queues=wanted[number]
            )
            worker.start()
            self.workers.append(worker)
        for worker in self.workers:  # every worker consumes before a dub is sent, so they share its segments
            log = worker.directory / f"{worker.name}-{worker.starts}.log"
            deadline = time.monotonic() + 120
            while " ready." not in log.read_text(errors="replace"):
                assert time.monotonic() < deadline, worker.log()
                time.sleep(0.2)

    def stop(self) -> None:
        while self.workers:
            self.workers.pop().stop()

    def log(self) -> str:
        return "\n".join(worker.log() for worker in self.workers)


@pytest.fixture(scope="module")
def fleet(
    celery_worker: WorkerProcess, service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    celery_worker.stop()  # the session's worker would take these dubs without fanning them out
    fleet = Fleet(service_env, tmp_path_factory.mktemp("fanout"))
    yield fleet
    fleet.stop()
    celery_worker.start()


@pytest.fixture(scope="module")
def talking(media_server: MediaServer) -> dict[str, Any]:
    return _clip(media_server, "fanout", 1.4)


def _clip(media_server: MediaServer, name: str, seconds: float) -> dict[str, Any]:
    pair = make_pair("clean", 11, "heldout", size=(256, 256), seconds=seconds)
    write_pair(pair, media_server.directory / name)
    return {
        "video_url": media_server.url(f"{name}/source.mp4"),
        "audio_url": media_server.url(f"{name}/dub.wav"),
        "model": SHIPPED_MODEL,
    }


def _segments(job_id: str, kind: str = "render") -> list[Any]:
    """The job's rows of a kind: its segments to render, its chunks to encode, or its join."""
    from app.core.db import new_session
    from app.models import JobSegment

    with new_session() as session:
        rows = session.scalars(
            select(JobSegment)
            .where(JobSegment.job_id == uuid.UUID(job_id), JobSegment.kind == kind)
            .order_by(JobSegment.index)
        )
        return [(row.index, row.status, row.attempts, row.error_code) for row in rows]


def _settled(job_id: str, kind: str = "render") -> list[Any]:
    """The job's rows of a kind once none is left to run: the task that ends a dub records the end first,
    then its own row (a success) or the others' (a failure)."""
    deadline = time.monotonic() + 30
    rows = _segments(job_id, kind)
    while any(row[1] in {"waiting", "queued", "running"} for row in rows) and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = _segments(job_id, kind)
    return rows


def _events(job_id: str) -> tuple[list[str], list[str]]:
    from app.core.db import new_session
    from app.models import JobEvent, WebhookDelivery

    with new_session() as session:
        events = list(session.scalars(select(JobEvent.type).where(JobEvent.job_id == uuid.UUID(job_id))))
        deliveries = list(
            session.scalars(
                select(WebhookDelivery.event_type).where(WebhookDelivery.job_id == uuid.UUID(job_id))
            )
        )
    return events, deliveries


def _work_left(job_id: str) -> bool:
    """Whether the first attempt's plan is still in storage (it goes with the other work objects)."""
    from app.core.storage import ObjectNotFound, get_storage
    from worker.tasks.fanout import PLAN_NAME, work_key

    try:
        get_storage().size(work_key(uuid.UUID(job_id), 1, PLAN_NAME))
    except ObjectNotFound:
        return False
    return True


def _wait_until_work_removed(job_id: str) -> None:
    deadline = time.monotonic() + 30
    while _work_left(job_id):
        assert time.monotonic() < deadline, f"dub {job_id} kept its work objects"
        time.sleep(0.2)


def _dub(client: TestClient, caller: Caller, body: dict[str, Any], timeout_s: float = 300) -> dict[str, Any]:
    created = client.post("/v1/dubs", json=body, headers=caller.headers)
    assert created.status_code == 202, created.text
    return wait_for_status(client, caller, created.json()["id"], TERMINAL, timeout_s=timeout_s)


def _wait_for_stage(client: TestClient, caller: Caller, dub_id: str, stage: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/v1/dubs/{dub_id}", headers=caller.headers).json()
        if (body.get("progress") or {}).get("stage") == stage or body.get("status") in TERMINAL:
            return body
        time.sleep(0.1)
    raise AssertionError(f"dub {dub_id} never reached {stage}: {body}")


def _workers(job_id: str) -> list[Any]:
    from app.core.db import new_session
    from app.models import JobSegment

    with new_session() as session:
        return list(
            session.execute(
                select(JobSegment.index, JobSegment.status, JobSegment.worker).where(
                    JobSegment.job_id == uuid.UUID(job_id)
                )
            ).all()
        )


def _frames(done: dict[str, Any], path: Path) -> list[Any]:
    path.write_bytes(httpx.get(done["output"]["url"]).raise_for_status().content)
    return decode_planes(path)


def test_one_two_and_a_killed_worker_give_the_same_frames(
    client: TestClient,
    caller: Caller,
    talking: dict[str, Any],
    webhook_receiver: WebhookReceiver,
    fleet: Fleet,
    tmp_path: Path,
) -> None:
    outputs = []
    for count in (2, 1):
        # Undisturbed runs: a staleness window far above a loaded machine's pauses (loading the model beats
        # nothing), so the reaper cannot take a live segment and every segment runs exactly once.
        fleet.run(count, REDUB_STALE_PROCESSING_AFTER_S="120")
        hook = f"hooks/{uuid.uuid4().hex}"
        done = _dub(client, caller, {**talking, "webhook_url": webhook_receiver.url(hook)})
        assert done["status"] == "succeeded", (done, fleet.log())
        assert (done["progress"]["stage"], done["progress"]["percent"]) == ("done", 100.0)
        # Three segments, each rendered once, by whichever worker took it; three chunks, once each; a join.
        assert _segments(done["id"]) == [(index, "done", 1, None) for index in range(3)]
        assert _segments(done["id"], "encode") == [(index, "done", 1, None) for index in range(3)]
        assert _settled(done["id"], "join") == [(0, "done", 1, None)]
        assert done["frames_rendered"] > 0 and done["timing"]["stages_s"]["render"] > 0
        events, deliveries = _events(done["id"])
        assert events.count("succeeded") == 1 and deliveries == ["dub.succeeded"]
        assert not _work_left(done["id"])
        outputs.append(_frames(done, tmp_path / f"{count}.mp4"))

    # Two workers again; the one without the reaper is SIGKILLed while it renders a segment.
    fleet.run(2)
    created = client.post("/v1/dubs", json=talking, headers=caller.headers).json()
    victim = fleet.workers[1]
    assert victim.process is not None
    deadline = time.monotonic() + 120
    pid = victim.process.pid
    while not any(
        status == "running" and str(worker).endswith(f":{pid}")
        for _, status, worker in _workers(created["id"])
    ):
        assert time.monotonic() < deadline, (_workers(created["id"]), pid)
        time.sleep(0.1)
    victim.kill()
    done = wait_for_status(client, caller, created["id"], TERMINAL, timeout_s=300)
    assert done["status"] == "succeeded", (done, fleet.log())
    rows = _segments(created["id"])
    assert [status for _, status, _, _ in rows] == ["done"] * 3
    assert sorted(attempts for _, _, attempts, _ in rows) == [1, 1, 2]  # the killed one ran again
    events, _ = _events(created["id"])
    assert events.count("succeeded") == 1 and "requeued" not in events
    outputs.append(_frames(done, tmp_path / "killed.mp4"))

    reference = outputs[0]
    assert len(reference) == 35
    for other in outputs[1:]:
        assert len(other) == len(reference)
        for frame, expected in zip(other, reference, strict=True):
            for plane, expected_plane in zip(frame, expected, strict=True):
                assert np.array_equal(plane, expected_plane)


def test_progress_counts_segments_and_a_cancel_ends_the_job_once(
    client: TestClient, caller: Caller, talking: dict[str, Any], fleet: Fleet
) -> None:
    fleet.run(1)
    created = client.post("/v1/dubs", json=talking, headers=caller.headers).json()
    rendering = _wait_for_stage(client, caller, created["id"], "rendering")
    assert rendering["status"] == "processing" and rendering["progress"]["percent"] < 100
    assert client.post(f"/v1/dubs/{created['id']}/cancel", headers=caller.headers).status_code == 200
    done = wait_for_status(client, caller, created["id"], TERMINAL, timeout_s=60)
    assert done["status"] == "canceled" and done["error"]["code"] == "canceled", (done, fleet.log())
    # No segment is left to run: the queued ones are closed, and the one rendering may not finish the job.
    statuses = [status for _, status, _, _ in _segments(created["id"])]
    assert "canceled" in statuses and set(statuses) <= {"done", "canceled"}, statuses
    _wait_until_work_removed(created["id"])
    events, _ = _events(created["id"])
    assert events.count("canceled") == 1 and "succeeded" not in events


def test_a_dub_past_its_deadline_fails_as_a_whole(
    client: TestClient, caller: Caller, talking: dict[str, Any], fleet: Fleet
) -> None:
    fleet.run(1, REDUB_JOB_DEADLINE_S="2")
    done = _dub(client, caller, talking)
    assert done["status"] == "failed", (done, fleet.log())
    assert done["error"]["code"] == "deadline_exceeded" and done["error"]["retryable"] is True
    assert done["output"] is None
    events, _ = _events(done["id"])
    assert events.count("failed") == 1 and "succeeded" not in events
    _wait_until_work_removed(done["id"])


def test_a_segment_that_cannot_render_fails_the_dub_with_its_code(
    client: TestClient,
    caller: Caller,
    talking: dict[str, Any],
    fleet: Fleet,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The process that plans the dub (this one, as a CPU worker would) knows a model that the GPU workers
    lack: the segment fails as `model_unavailable`, and so does the dub, once."""
    from app.core.config import get_settings
    from model.catalog import shipped_model_path
    from worker.tasks.processing import run_job

    fleet.stop()
    models = tmp_path / "models"
    models.mkdir()
    (models / "planner-only").symlink_to(shipped_model_path())
    for name, value in {**FANOUT_ENV, "REDUB_MODELS_DIR": str(models)}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        created = client.post("/v1/dubs", json={**talking, "model": "planner-only"}, headers=caller.headers)
        assert created.status_code == 202, created.text
        assert run_job(uuid.UUID(created.json()["id"])) == "planned"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    fleet.run(1)
    done = wait_for_status(client, caller, created.json()["id"], TERMINAL, timeout_s=120)
    assert done["status"] == "failed", (done, fleet.log())
    assert done["error"]["code"] == "model_unavailable" and done["error"]["retryable"] is False
    codes = sorted((status, code) for _, status, _, code in _settled(done["id"]))
    assert codes[-1] == ("failed", "model_unavailable")
    assert all(status == "canceled" for status, _ in codes[:-1]), codes
    events, _ = _events(done["id"])
    assert events.count("failed") == 1


def test_cpu_workers_plan_and_assemble_and_gpu_workers_only_render(
    client: TestClient, caller: Caller, talking: dict[str, Any], fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.config import get_settings

    fleet.run(2, queues=["default,webhooks", "gpu"])
    monkeypatch.setenv("REDUB_FANOUT", "true")  # the API sends the dub's own task to the default queue
    get_settings.cache_clear()
    try:
        created = client.post("/v1/dubs", json=talking, headers=caller.headers)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert created.status_code == 202, created.text
    done = wait_for_status(client, caller, created.json()["id"], TERMINAL, timeout_s=300)
    assert done["status"] == "succeeded", (done, fleet.log())
    cpu, gpu = (
        (worker.directory / f"{worker.name}-{worker.starts}.log").read_text(errors="replace")
        for worker in fleet.workers
    )
    for task in ("process", "encode_chunk", "assemble"):
        assert f"redub.dubs.{task}[" in cpu and f"redub.dubs.{task}[" not in gpu
    assert "redub.dubs.segment[" in gpu and "redub.dubs.segment[" not in cpu


def test_a_short_dub_of_another_account_overtakes_a_long_one_on_the_gpu_queue(
    client: TestClient,
    caller: Caller,
    make_caller: Callable[..., Caller],
    media_server: MediaServer,
    fleet: Fleet,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both dubs are planned before any GPU worker runs, the long one first: one GPU worker then takes the
    short one's segment after the long one's first (its only segment in the first priority band)."""
    from app.core.config import get_settings

    other = make_caller(rate_limit_per_minute=0, max_concurrent_jobs=0)
    long_clip, short_clip = _clip(media_server, "fair-long", 2.0), _clip(media_server, "fair-short", 0.68)
    queues = ["default,webhooks", "gpu"]
    fleet.run(1, queues=queues[:1], REDUB_SEGMENT_PRIORITY_BAND="1")
    monkeypatch.setenv("REDUB_FANOUT", "true")  # the API sends the dub's own task to the default queue
    get_settings.cache_clear()
    try:
        long_dub = client.post("/v1/dubs", json=long_clip, headers=caller.headers).json()
        assert _wait_for_stage(client, caller, long_dub["id"], "rendering")["status"] == "processing"
        short_dub = client.post("/v1/dubs", json=short_clip, headers=other.headers).json()
        assert _wait_for_stage(client, other, short_dub["id"], "rendering")["status"] == "processing"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert len(_segments(long_dub["id"])) >= 4 and len(_segments(short_dub["id"])) == 1
    fleet.run(2, queues=queues, REDUB_SEGMENT_PRIORITY_BAND="1")
    short_done = wait_for_status(client, other, short_dub["id"], TERMINAL, timeout_s=300)
    long_done = wait_for_status(client, caller, long_dub["id"], TERMINAL, timeout_s=300)
    assert short_done["status"] == long_done["status"] == "succeeded", fleet.log()
    assert short_done["completed_at"] < long_done["completed_at"]
    # The GPU worker's order: the long dub's first segment, the short dub's, then the long dub's others.
    gpu_log = (
        fleet.workers[1].directory / f"{fleet.workers[1].name}-{fleet.workers[1].starts}.log"
    ).read_text()
    order = re.findall(r"redub\.dubs\.segment\[segment-([0-9a-f-]{36})-1-(\d+)\] succeeded", gpu_log)
    assert [(job, int(index)) for job, index in order][:2] == [(long_dub["id"], 0), (short_dub["id"], 0)]


def test_progress_events_follow_the_segments_as_they_finish(
    client: TestClient,
    caller: Caller,
    talking: dict[str, Any],
    webhook_receiver: WebhookReceiver,
    fleet: Fleet,
) -> None:
    import json

    from app.core.db import new_session
    from app.models import WebhookDelivery

    fleet.run(1, REDUB_WEBHOOK_PROGRESS_INTERVAL_S="0", REDUB_STALE_PROCESSING_AFTER_S="120")
    hook = webhook_receiver.url(f"hooks/{uuid.uuid4().hex}")
    body = {**talking, "webhook_url": hook, "webhook_events": ["dub.progress", "dub.succeeded"]}
    done = _dub(client, caller, body)
    assert done["status"] == "succeeded", (done, fleet.log())
    with new_session() as session:
        payloads = session.scalars(
            select(WebhookDelivery.payload).where(
                WebhookDelivery.job_id == uuid.UUID(done["id"]), WebhookDelivery.event_type == "dub.progress"
            )
        )
        progress = [json.loads(payload)["data"]["progress"] for payload in payloads]
    # One event as each of the first two of three segments ends; the last one starts the assembly instead.
    rendering = sorted(item["percent"] for item in progress if item["stage"] == "rendering")
    assert rendering == pytest.approx([100 / 3, 200 / 3], abs=0.05)  # the API shows tenths


def test_a_chunk_delivered_twice_runs_once_and_a_failed_chunk_fails_the_dub(
    client: TestClient,
    caller: Caller,
    talking: dict[str, Any],
    media_server: MediaServer,
    fleet: Fleet,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Only a GPU worker runs at first, so a dub's chunks wait on the default queue once its segments are
    rendered. This process then runs one chunk's task twice, as a late ack would deliver it; the CPU worker
    that starts next takes the queued copies. A second dub's patch is damaged before its chunks run."""
    from app.core.config import get_settings
    from app.core.storage import get_storage
    from worker.tasks.fanout import patch_name, run_chunk, work_key
    from worker.tasks.processing import run_job

    fleet.run(1, queues=["gpu"], REDUB_STALE_PROCESSING_AFTER_S="120")
    for name, value in FANOUT_ENV.items():  # the API sends the dub's own task to the default queue
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    damaged_clip = _clip(media_server, "chunk-damaged", 0.68)
    try:
        created = client.post("/v1/dubs", json=talking, headers=caller.headers).json()
        damaged = client.post("/v1/dubs", json=damaged_clip, headers=caller.headers).json()
        for dub in (created, damaged):  # this process plans both, as a CPU worker would
            assert run_job(uuid.UUID(dub["id"])) == "planned"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    for dub in (created, damaged):
        body = _wait_for_stage(client, caller, dub["id"], "assembling")
        assert body["status"] == "processing" and body["progress"]["percent"] == 0, body
    assert _segments(created["id"], "encode") == [(index, "queued", 0, None) for index in range(3)]
    assert _segments(created["id"], "join") == [(0, "waiting", 0, None)]

    job_id = uuid.UUID(created["id"])
    assert run_chunk(job_id, 1, 1) == "done"
    assert run_chunk(job_id, 1, 1) == "skipped"  # the same task again: the row is done, nothing is redone
    assert _segments(created["id"], "encode")[1] == (1, "done", 1, None)
    progress = client.get(f"/v1/dubs/{created['id']}", headers=caller.headers).json()["progress"]
    assert progress == {**progress, "stage": "assembling", "percent": 25.0}  # 1 of 3 chunks and the join

    # The second dub's only segment's patch is no patch any more: its first chunk cannot be encoded.
    (tmp_path / "junk.npz").write_bytes(b"not a patch")
    key = work_key(uuid.UUID(damaged["id"]), 1, patch_name(0))
    get_storage().upload_file(key, tmp_path / "junk.npz", "application/octet-stream")
    fleet.run(2, queues=["gpu", "default,webhooks"], REDUB_STALE_PROCESSING_AFTER_S="120")
    done = wait_for_status(client, caller, created["id"], TERMINAL, timeout_s=300)
    assert done["status"] == "succeeded", (done, fleet.log())
    assert _segments(created["id"], "encode") == [(index, "done", 1, None) for index in range(3)]
    assert _settled(created["id"], "join") == [(0, "done", 1, None)]
    events, _ = _events(created["id"])
    assert events.count("succeeded") == 1
    frames = _frames(done, tmp_path / "joined.mp4")
    assert len(frames) == 35
    assert "encode_chunks" in done["timing"]["stages_s"]
    assert not _work_left(created["id"])

    failed = wait_for_status(client, caller, damaged["id"], TERMINAL, timeout_s=120)
    assert failed["status"] == "failed", (failed, fleet.log())
    assert failed["error"]["code"] == "invalid_media" and failed["error"]["retryable"] is False
    rows = _settled(damaged["id"], "encode") + _settled(damaged["id"], "join")
    assert ("failed", "invalid_media") in [(status, code) for _, status, _, code in rows]
    assert all(status in {"failed", "done", "canceled"} for _, status, _, _ in rows), rows
    events, _ = _events(damaged["id"])
    assert events.count("failed") == 1 and "succeeded" not in events
    _wait_until_work_removed(damaged["id"])


def test_a_job_heartbeat_is_watched_until_the_job_is_planned_then_its_rows_are(
    client: TestClient, caller: Caller, talking: dict[str, Any], fleet: Fleet
) -> None:
    """A dub rendering on its own (no rows) whose heartbeat stopped is taken back whatever its stage; a
    planned dub's own heartbeat no longer counts (its rows have theirs)."""
    from sqlalchemy import update

    from app.core.db import new_session
    from app.dubs import repository
    from app.models import Job, JobSegment, SegmentKind
    from app.models.base import utcnow

    fleet.stop()  # nobody takes the dub: this test moves it by hand
    created = client.post("/v1/dubs", json=talking, headers=caller.headers).json()
    job_id = uuid.UUID(created["id"])
    now = utcnow()
    with new_session() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(status="processing", attempts=1, progress_stage="rendering", heartbeat_at=now)
        )
        session.commit()

    def stale() -> bool:
        with new_session() as session:
            later = now + timedelta(seconds=1)
            return any(job.id == job_id for job in repository.stale_processing(session, later))

    assert stale()
    with new_session() as session:
        session.add(
            JobSegment(
                job_id=job_id,
                kind=SegmentKind.ENCODE,
                index=0,
                job_attempt=1,
                status="queued",
                frame_count=35,
                attempts=0,
                updated_at=now,
            )
        )
        session.commit()
    assert not stale()
    with new_session() as session:  # a later attempt, not yet planned, is watched again
        session.execute(update(Job).where(Job.id == job_id).values(attempts=2))
        session.commit()
    assert stale()
    with new_session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(status="failed"))
        session.commit()


def test_one_worker_rendering_three_segments_fetches_and_decodes_the_inputs_once(
    client: TestClient,
    caller: Caller,
    talking: dict[str, Any],
    fleet: Fleet,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """This process plans a dub and renders its three segments, as one GPU worker would (no worker runs
    meanwhile); its input cache (a fresh folder) counts what came from storage. A worker then finishes it."""
    from dataclasses import asdict

    from app.core.config import get_settings
    from worker.tasks import input_cache
    from worker.tasks.fanout import run_segment
    from worker.tasks.processing import run_job

    fleet.run(0)
    (tmp_path / "work").mkdir()
    for name, value in {**FANOUT_ENV, "REDUB_WORK_DIR": str(tmp_path / "work")}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    input_cache.clear_memory()
    try:
        created = client.post("/v1/dubs", json=talking, headers=caller.headers).json()
        job_id = uuid.UUID(created["id"])
        assert run_job(job_id) == "planned"
        before = asdict(input_cache.counters)
        assert [run_segment(job_id, 1, index) for index in range(3)] == ["done", "done", "done"]
        counted = {name: value - before[name] for name, value in asdict(input_cache.counters).items()}
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        input_cache.clear_memory()
    # The video, the dub track and the analysis downloaded once, then linked for the other two segments;
    # the dub track decoded and the analysis loaded once, then reused.
    assert counted == {"downloads": 3, "file_hits": 6, "evictions": 0, "loads": 2, "memory_hits": 4}
    assert [status for _, status, _, _ in _segments(created["id"])] == ["done"] * 3

    fleet.run(1)
    done = wait_for_status(client, caller, created["id"], TERMINAL, timeout_s=300)
    assert done["status"] == "succeeded", (done, fleet.log())
    assert len(_frames(done, tmp_path / "out.mp4")) == 35
