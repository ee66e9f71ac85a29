"""Deleting what a customer sent and got back: a dub with its stored inputs and output, and uploads."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Caller, MediaServer, WorkerProcess, wait_for_status


@pytest.fixture
def worker(celery_worker: WorkerProcess) -> WorkerProcess:
    celery_worker.start()
    return celery_worker


def test_deleting_a_dub_removes_its_output_and_inputs(
    client: TestClient, caller: Caller, media_server: MediaServer, worker: WorkerProcess
) -> None:
    from app.core.storage import ObjectNotFound, get_storage, input_key, output_key

    body = {"video_url": media_server.url("video.mp4"), "audio_url": media_server.url("audio.m4a")}
    created = client.post("/v1/dubs", json=body, headers=caller.headers).json()
    done = wait_for_status(client, caller, created["id"], {"succeeded", "failed", "canceled"})
    assert done["status"] == "succeeded", done
    storage = get_storage()
    keys = [output_key(done["id"]), input_key(done["id"], "video"), input_key(done["id"], "audio")]
    assert all(storage.size(key) > 0 for key in keys)
    deleted = client.delete(f"/v1/dubs/{done['id']}", headers=caller.headers)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"id": done["id"], "object": "dub", "deleted": True}
    for key in keys:
        with pytest.raises(ObjectNotFound):
            storage.size(key)
    assert httpx.get(done["output"]["url"]).status_code in (403, 404)
    assert client.get(f"/v1/dubs/{done['id']}", headers=caller.headers).status_code == 404
    assert client.delete(f"/v1/dubs/{done['id']}", headers=caller.headers).status_code == 404


def test_a_running_dub_must_be_canceled_before_it_is_deleted(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    body = {
        "video_url": media_server.url("slow/video.mp4?seconds=30"),
        "audio_url": media_server.url("audio.m4a"),
    }
    created = client.post("/v1/dubs", json=body, headers=caller.headers).json()
    refused = client.delete(f"/v1/dubs/{created['id']}", headers=caller.headers)
    assert refused.status_code == 409 and refused.json()["code"] == "dub_not_finished"
    client.post(f"/v1/dubs/{created['id']}/cancel", headers=caller.headers)


def test_files_are_listed_and_deleted(
    client: TestClient, make_caller: object, media_server: MediaServer
) -> None:
    from app.core.storage import ObjectNotFound, file_key, get_storage

    owner = make_caller(rate_limit_per_minute=0)  # type: ignore[operator]
    data = (media_server.directory / "audio.m4a").read_bytes()
    ids = [
        client.post(
            "/v1/files", files={"file": (f"a{index}.m4a", data, "audio/mp4")}, headers=owner.headers
        ).json()["id"]
        for index in range(3)
    ]
    listed = client.get("/v1/files", params={"limit": 2}, headers=owner.headers).json()
    assert [item["id"] for item in listed["data"]] == ids[::-1][:2] and listed["has_more"] is True
    rest = client.get("/v1/files", params={"cursor": listed["next_cursor"]}, headers=owner.headers).json()
    assert [item["id"] for item in rest["data"]] == [ids[0]] and rest["has_more"] is False
    deleted = client.delete(f"/v1/files/{ids[1]}", headers=owner.headers)
    assert deleted.json() == {"id": ids[1], "object": "file", "deleted": True}
    with pytest.raises(ObjectNotFound):
        get_storage().size(file_key(owner.account_id, ids[1]))
    assert client.get(f"/v1/files/{ids[1]}", headers=owner.headers).status_code == 404
    assert ids[1] not in [
        item["id"] for item in client.get("/v1/files", headers=owner.headers).json()["data"]
    ]
    refused = client.post(
        "/v1/dubs",
        json={"video_url": media_server.url("video.mp4"), "audio_file_id": ids[1]},
        headers=owner.headers,
    )
    assert refused.status_code == 422 and refused.json()["code"] == "file_not_found"


def test_outputs_and_uploads_expire_after_the_retention_period(
    client: TestClient, caller: Caller, media_server: MediaServer, worker: WorkerProcess
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from app.core.db import new_session
    from app.core.storage import ObjectNotFound, get_storage, output_key
    from app.models import Job, MediaFile
    from app.models.base import utcnow
    from worker.tasks.retention import sweep_expired

    body = {"video_url": media_server.url("video.mp4"), "audio_url": media_server.url("audio.m4a")}
    done = wait_for_status(
        client, caller, client.post("/v1/dubs", json=body, headers=caller.headers).json()["id"], {"succeeded"}
    )
    assert done["output"]["expires_at"] > done["output"]["url_expires_at"]  # 30 days vs 1 hour
    data = (media_server.directory / "audio.m4a").read_bytes()
    upload = client.post(
        "/v1/files", files={"file": ("a.m4a", data, "audio/mp4")}, headers=caller.headers
    ).json()
    assert upload["expires_at"] > upload["created_at"]
    # Age both past the 30 days instead of waiting for them.
    with new_session() as session:
        long_ago = utcnow() - timedelta(days=31)
        session.execute(update(Job).where(Job.id == done["id"]).values(finished_at=long_ago))
        session.execute(update(MediaFile).where(MediaFile.id == upload["id"]).values(created_at=long_ago))
        session.commit()
    assert sweep_expired() >= 2
    with pytest.raises(ObjectNotFound):
        get_storage().size(output_key(done["id"]))
    expired = client.get(f"/v1/dubs/{done['id']}", headers=caller.headers).json()
    assert (
        expired["status"] == "succeeded" and expired["output"] is None and expired["output_expired"] is True
    )
    gone = client.get(f"/v1/dubs/{done['id']}/output", headers=caller.headers)
    assert gone.status_code == 410 and gone.json()["code"] == "output_expired"
    assert client.get(f"/v1/files/{upload['id']}", headers=caller.headers).status_code == 404


def test_a_preflight_frame_expires_after_the_retention_period(
    client: TestClient, caller: Caller, media_server: MediaServer, worker: WorkerProcess
) -> None:
    import time
    from datetime import timedelta

    from sqlalchemy import update

    from app.core.db import new_session
    from app.core.storage import ObjectNotFound, get_storage, preflight_frame_key
    from app.models import Preflight
    from app.models.base import utcnow
    from worker.tasks.retention import sweep_expired

    body = {"video_url": media_server.url("video.mp4"), "audio_url": media_server.url("audio.m4a")}
    preflight_id = client.post("/v1/dubs/preflight", json=body, headers=caller.headers).json()["id"]
    deadline = time.monotonic() + 120
    while client.get(f"/v1/dubs/preflight/{preflight_id}", headers=caller.headers).json()["status"] in (
        "queued",
        "processing",
    ):
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.2)
    frame = client.get(f"/v1/dubs/preflight/{preflight_id}/frame", headers=caller.headers)
    assert frame.status_code == 200 and frame.content[:2] == b"\xff\xd8"  # a JPEG
    assert get_storage().size(preflight_frame_key(preflight_id)) == len(frame.content)
    with new_session() as session:
        session.execute(
            update(Preflight)
            .where(Preflight.id == preflight_id)
            .values(finished_at=utcnow() - timedelta(days=31))
        )
        session.commit()
    assert sweep_expired() >= 1
    with pytest.raises(ObjectNotFound):
        get_storage().size(preflight_frame_key(preflight_id))
    gone = client.get(f"/v1/dubs/preflight/{preflight_id}/frame", headers=caller.headers)
    assert gone.status_code == 410 and gone.json()["code"] == "frame_expired"
    # The report stays readable.
    assert client.get(f"/v1/dubs/preflight/{preflight_id}", headers=caller.headers).json()["report"]["frame"]
