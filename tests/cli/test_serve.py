"""`redub serve --embedded`: the API and a real Celery worker on SQLite, local files and kombu's filesystem
transport, dubbing a clip from start to finish with no other service."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.core.config import DEVELOPMENT_STORAGE_SIGNING_SECRET, secret_weakness
from app.core.storage import local_signature
from cli.serve import embedded_secrets
from tests.conftest import MediaServer, WebhookReceiver, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_embedded_mode_dubs_a_clip_end_to_end(media_server: MediaServer, tmp_path: Path) -> None:
    port = free_port()
    environment = {name: value for name, value in os.environ.items() if not name.startswith("REDUB_")}
    environment["REDUB_ALLOW_PRIVATE_URLS"] = "true"  # the media server is on 127.0.0.1
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli.main",
                "serve",
                "--embedded",
                "--data-dir",
                str(tmp_path / "data"),
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert server.poll() is None, log_path.read_text()
            try:
                return httpx.get(f"{base}/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 90, "embedded server")
        match = re.search(r"API key (\S+)", log_path.read_text())
        assert match, log_path.read_text()
        headers = {"Authorization": f"Bearer {match.group(1)}"}
        created = httpx.post(
            f"{base}/v1/dubs",
            json={"video_url": media_server.url("video.mp4"), "audio_url": media_server.url("audio.m4a")},
            headers=headers,
        )
        assert created.status_code == 202, created.text
        dub_id = created.json()["id"]
        deadline = time.monotonic() + 120
        body = created.json()
        while body["status"] in ("queued", "processing") and time.monotonic() < deadline:
            time.sleep(0.3)
            body = httpx.get(f"{base}/v1/dubs/{dub_id}", headers=headers).json()
        assert body["status"] == "succeeded", (body, log_path.read_text()[-3000:])
        output = httpx.get(body["output"]["url"])
        assert output.status_code == 200
        assert output.content[4:8] == b"ftyp"
        assert len(output.content) == body["output"]["size_bytes"]
        assert (tmp_path / "data" / "redub.db").exists()

        # The install made its own secrets; the webhook secret went to a private file, not to stderr.
        data = tmp_path / "data"
        secrets = json.loads((data / "secrets.json").read_text())
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert stat.S_IMODE((data / "secrets.json").stat().st_mode) == 0o600
        assert stat.S_IMODE((data / "webhook-secret").stat().st_mode) == 0o600
        assert (data / "webhook-secret").read_text().startswith("whsec_")
        assert "whsec_" not in log_path.read_text()
        # A link forged with the public default secret, or one that expires far beyond the presign TTL
        # (1 h), is refused even when signed with the real secret.
        key = f"jobs/{dub_id.removeprefix('dub_')}/output.mp4"
        far = int(time.time()) + 10**9
        for secret, expires in [
            (DEVELOPMENT_STORAGE_SIGNING_SECRET, int(time.time()) + 60),
            (secrets["REDUB_STORAGE_SIGNING_SECRET"], far),
            (secrets["REDUB_STORAGE_SIGNING_SECRET"], int(time.time()) + 3600 + 120),
        ]:
            forged = httpx.get(
                f"{base}/v1/storage/{key}",
                params={"expires": expires, "signature": local_signature(secret, key, expires)},
            )
            assert forged.status_code == 403, (secret, expires)
        expires = int(time.time()) + 600
        honest = httpx.get(
            f"{base}/v1/storage/{key}",
            params={
                "expires": expires,
                "signature": local_signature(secrets["REDUB_STORAGE_SIGNING_SECRET"], key, expires),
            },
        )
        assert honest.status_code == 200 and honest.content == output.content
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_embedded_secrets_are_random_private_and_kept(tmp_path: Path) -> None:
    first = embedded_secrets(tmp_path / "a")
    assert embedded_secrets(tmp_path / "a") == first  # kept across starts
    other = embedded_secrets(tmp_path / "b")
    assert set(first) == {"REDUB_KEY_HASH_SECRET", "REDUB_STORAGE_SIGNING_SECRET"}
    for name, value in first.items():
        assert secret_weakness(value) is None
        assert value != other[name]
    assert first["REDUB_KEY_HASH_SECRET"] != first["REDUB_STORAGE_SIGNING_SECRET"]
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a" / "secrets.json").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("arguments", "secret_env"),
    [
        (["--host", "0.0.0.0"], {}),
        (["--host", "192.0.2.1"], {"REDUB_KEY_HASH_SECRET": "x" * 40}),
        (
            ["--embedded", "--host", "0.0.0.0"],
            {"REDUB_STORAGE_SIGNING_SECRET": DEVELOPMENT_STORAGE_SIGNING_SECRET},
        ),
    ],
)
def test_a_public_bind_with_default_secrets_is_refused(
    tmp_path: Path, arguments: list[str], secret_env: dict[str, str]
) -> None:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("REDUB_")}
    environment.update(secret_env)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--data-dir",
            str(tmp_path / "data"),
            "--port",
            "1",
            *arguments,
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Refusing to listen" in result.stderr and "development defaults" in result.stderr
    assert not (tmp_path / "data" / "redub.db").exists()  # refused before anything was set up


def test_embedded_webhooks_do_not_wait_behind_a_running_dub(
    media_server: MediaServer, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    port = free_port()
    environment = {name: value for name, value in os.environ.items() if not name.startswith("REDUB_")}
    environment["REDUB_ALLOW_PRIVATE_URLS"] = "true"
    environment["REDUB_CANCEL_POLL_INTERVAL_S"] = "0.2"
    log_path = tmp_path / "serve.log"
    data = str(tmp_path / "data")
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "serve",
        "--embedded",
        "--data-dir",
        data,
        "--port",
        str(port),
    ]
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert server.poll() is None, log_path.read_text()
            try:
                return httpx.get(f"{base}/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 90, "embedded server")
        match = re.search(r"API key (\S+)", log_path.read_text())
        assert match, log_path.read_text()
        headers = {"Authorization": f"Bearer {match.group(1)}"}
        # A dub whose download takes two minutes holds the dubbing worker...
        slow = {
            "video_url": media_server.url("slow/video.mp4?seconds=120"),
            "audio_url": media_server.url("audio.m4a"),
        }
        busy = httpx.post(f"{base}/v1/dubs", json=slow, headers=headers).json()
        deadline = time.monotonic() + 60
        while httpx.get(f"{base}/v1/dubs/{busy['id']}", headers=headers).json()["status"] == "queued":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        # ... while another dub is canceled: its webhook must not wait for the first to finish.
        hook = "hooks/embedded-canceled"
        queued = httpx.post(
            f"{base}/v1/dubs",
            json={**slow, "webhook_url": webhook_receiver.url(hook)},
            headers=headers,
        ).json()
        assert (
            httpx.post(f"{base}/v1/dubs/{queued['id']}/cancel", headers=headers).json()["status"]
            == "canceled"
        )
        deadline = time.monotonic() + 60
        while not webhook_receiver.for_path(hook) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [item.json()["type"] for item in webhook_receiver.for_path(hook)] == ["dub.canceled"]
        assert httpx.get(f"{base}/v1/dubs/{busy['id']}", headers=headers).json()["status"] == "processing"
        httpx.post(f"{base}/v1/dubs/{busy['id']}/cancel", headers=headers)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
