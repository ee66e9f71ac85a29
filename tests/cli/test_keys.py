"""`redub keys` and `redub db` as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]


def _redub(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_create_json_key_works_and_revoke_stops_it(service_env: dict[str, str], client: TestClient) -> None:
    from app.keys.service import clear_cache

    created = _redub(
        "keys", "create", "acme", "--json", "--rate-limit", "0", "--max-concurrent", "3", env=service_env
    )
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    assert set(issued) == {"key", "webhook_secret"}
    headers = {"Authorization": f"Bearer {issued['key']}"}
    limits = client.get("/v1/keys/current", headers=headers).json()["limits"]
    assert limits["rate_limit_per_minute"] == 0 and limits["max_concurrent_jobs"] == 3

    revoked = _redub("keys", "revoke", issued["key"], env=service_env)
    assert revoked.returncode == 0, revoked.stderr
    clear_cache()
    assert client.get("/v1/keys/current", headers=headers).status_code == 401
    assert _redub("keys", "revoke", issued["key"], env=service_env).returncode == 1


def test_negative_limits_are_refused(service_env: dict[str, str]) -> None:
    result = _redub("keys", "create", "acme", "--rate-limit", "-1", env=service_env)
    assert result.returncode != 0
    assert "--rate-limit" in result.stderr


def test_db_upgrade_is_idempotent(service_env: dict[str, str]) -> None:
    result = _redub("db", "upgrade", env=service_env)
    assert result.returncode == 0, result.stderr
