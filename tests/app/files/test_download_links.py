"""Signed download links of the local object storage (embedded mode): only an intact, unexpired link that
lives no longer than the presign TTL opens an object."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.core.config import get_settings
from app.core.storage import LocalStorage, local_signature
from app.dubs.dependencies import storage


@pytest.fixture
def local(client: TestClient, tmp_path: Path) -> Iterator[LocalStorage]:
    settings = get_settings().model_copy(update={"local_storage_dir": str(tmp_path), "public_base_url": ""})
    objects = LocalStorage(settings)
    client.app.dependency_overrides[storage] = lambda: objects  # type: ignore[attr-defined]
    try:
        yield objects
    finally:
        client.app.dependency_overrides.pop(storage, None)  # type: ignore[attr-defined]


def _get(client: TestClient, key: str, expires: int, signature: str) -> int:
    response = client.get(f"/v1/storage/{key}", params={"expires": expires, "signature": signature})
    return response.status_code


def test_only_an_intact_unexpired_link_opens_the_object(client: TestClient, local: LocalStorage) -> None:
    secret = get_settings().storage_signing_secret
    ttl = get_settings().presign_ttl_s
    for key in ("jobs/a/output.mp4", "jobs/b/output.mp4"):
        path = local.path_for(key)
        path.parent.mkdir(parents=True)
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + key.encode())
    url = local.presigned_url("jobs/a/output.mp4", 600)
    response = client.get(url)
    assert response.status_code == 200 and response.content.endswith(b"jobs/a/output.mp4")

    now = int(time.time())
    good = local_signature(secret, "jobs/a/output.mp4", now + 600)
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert _get(client, "jobs/a/output.mp4", now + 600, tampered) == 403
    assert _get(client, "jobs/a/output.mp4", now + 600, "") == 403
    # A signature is for one object and one expiry.
    assert _get(client, "jobs/b/output.mp4", now + 600, good) == 403
    assert _get(client, "jobs/a/output.mp4", now + 601, good) == 403
    # Expired, or expiring further ahead than links are ever issued for, even when signed correctly.
    assert (
        _get(client, "jobs/a/output.mp4", now - 1, local_signature(secret, "jobs/a/output.mp4", now - 1))
        == 403
    )
    far = now + ttl + 120
    assert _get(client, "jobs/a/output.mp4", far, local_signature(secret, "jobs/a/output.mp4", far)) == 403
    assert _get(client, "jobs/a/output.mp4", now + 600, good) == 200
