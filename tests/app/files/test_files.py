"""Uploads: streamed to object storage, sniffed for media, capped, private to their account."""

from __future__ import annotations

from collections.abc import Callable

import boto3
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Caller, MediaServer


def test_upload_lands_in_object_storage(
    client: TestClient, caller: Caller, media_server: MediaServer, s3_server: dict[str, str]
) -> None:
    data = (media_server.directory / "video.mp4").read_bytes()
    response = client.post(
        "/v1/files", files={"file": ("clip.mp4", data, "video/mp4")}, headers=caller.headers
    )
    assert response.status_code == 201, response.text
    uploaded = response.json()
    assert (uploaded["filename"], uploaded["size_bytes"]) == ("clip.mp4", len(data))
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server["endpoint"],
        aws_access_key_id=s3_server["access_key"],
        aws_secret_access_key=s3_server["secret_key"],
        region_name="us-east-1",
    )
    stored = s3.get_object(Bucket=s3_server["bucket"], Key=f"files/{caller.account_id}/{uploaded['id']}")
    assert stored["Body"].read() == data
    assert client.get(f"/v1/files/{uploaded['id']}", headers=caller.headers).json() == uploaded


def test_non_media_uploads_are_refused(client: TestClient, caller: Caller) -> None:
    response = client.post(
        "/v1/files",
        files={"file": ("page.html", b"<html>" + b"x" * 5000, "text/html")},
        headers=caller.headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "not_media"


def test_files_of_another_account_are_invisible_and_unusable(
    client: TestClient, caller: Caller, make_caller: Callable[..., Caller], media_server: MediaServer
) -> None:
    data = (media_server.directory / "audio.m4a").read_bytes()
    file_id = client.post(
        "/v1/files", files={"file": ("a.m4a", data, "audio/mp4")}, headers=caller.headers
    ).json()["id"]
    stranger = make_caller(rate_limit_per_minute=0)
    assert client.get(f"/v1/files/{file_id}", headers=stranger.headers).status_code == 404
    response = client.post(
        "/v1/dubs",
        json={"video_url": media_server.url("video.mp4"), "audio_file_id": file_id},
        headers=stranger.headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "file_not_found"


def test_uploads_over_the_cap_are_refused_and_leave_no_file(
    client: TestClient, caller: Caller, media_server: MediaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.config import get_settings

    data = (media_server.directory / "video.mp4").read_bytes()
    monkeypatch.setenv("REDUB_MAX_UPLOAD_BYTES", str(len(data) // 2))
    get_settings.cache_clear()
    try:
        response = client.post(
            "/v1/files", files={"file": ("big.mp4", data, "video/mp4")}, headers=caller.headers
        )
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"


def test_the_content_type_comes_from_the_bytes_not_the_client(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    for name, claimed, expected in [
        ("video.mp4", "text/plain", "video/mp4"),
        ("audio.m4a", "application/octet-stream", "audio/mp4"),
    ]:
        data = (media_server.directory / name).read_bytes()
        response = client.post("/v1/files", files={"file": (name, data, claimed)}, headers=caller.headers)
        assert response.status_code == 201, response.text
        assert response.json()["content_type"] == expected
