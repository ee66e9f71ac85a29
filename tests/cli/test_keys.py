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


def test_keys_without_a_database_say_what_to_set(tmp_path: Path) -> None:
    env = {"REDUB_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:9/nowhere"}
    result = _redub("keys", "create", "acme", "--json", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout)["error"]["code"] == "database_unreachable"
    assert "REDUB_DATABASE_URL" in result.stdout and "--data-dir" in result.stdout


def test_keys_in_an_embedded_data_dir_list_and_revoke_by_name(tmp_path: Path) -> None:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("REDUB_")}
    data = str(tmp_path / "data")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", "keys", *args, "--data-dir", data],
            cwd=ROOT,
            env=clean,
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = run("create", "alice", "--json")
    assert first.returncode == 0, first.stderr
    issued = json.loads(first.stdout)
    assert (tmp_path / "data" / "redub.db").is_file()
    listed = json.loads(run("list", "--json").stdout)
    assert [(item["name"], item["revoked"]) for item in listed] == [("alice", False)]
    assert listed[0]["prefix"] == "_".join(issued["key"].split("_")[:2])
    # An account that no key belongs to is a typo, not a new account.
    unknown = run("create", "bob", "--account", "6f1c1f4e-3a5e-4b9e-9a43-2d1f7f0a0b11")
    assert unknown.returncode == 1 and "no key belongs to account" in unknown.stderr
    same = run("create", "bob", "--account", listed[0]["account_id"], "--json")
    assert same.returncode == 0, same.stderr
    revoked = run("revoke", "alice")
    assert revoked.returncode == 0, revoked.stderr
    after = {item["name"]: item["revoked"] for item in json.loads(run("list", "--json").stdout)}
    assert after == {"alice": True, "bob": False}


def test_a_revoked_key_stops_working_within_a_second() -> None:
    from app.core.config import Settings

    assert Settings().auth_cache_ttl_s <= 1.0
