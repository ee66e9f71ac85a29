from __future__ import annotations

import os
import secrets

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from pydantic import ValidationError
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.core.config import (
    DEVELOPMENT_KEY_HASH_SECRET,
    DEVELOPMENT_STORAGE_SIGNING_SECRET,
    Settings,
    secret_weakness,
)
from app.core.db import libpq_conninfo


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only what the test passes counts: the service fixtures may have set REDUB_* for the whole session.
    for name in [name for name in os.environ if name.startswith("REDUB_")]:
        monkeypatch.delenv(name)


def _strong() -> str:
    return secrets.token_hex(32)


def test_production_refuses_the_development_secrets(clean_env: None) -> None:
    with pytest.raises(ValidationError, match="KEY_HASH_SECRET is a public development default"):
        Settings(environment="production", storage_signing_secret=_strong())
    with pytest.raises(ValidationError, match="STORAGE_SIGNING_SECRET is a public development default"):
        Settings(environment="production", key_hash_secret=_strong())
    settings = Settings(environment="production", key_hash_secret=_strong(), storage_signing_secret=_strong())
    assert settings.allow_private_urls is False


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("CHANGE_ME", "placeholder"),
        ("x", "shorter than 32"),
        ("x" * 64, "not random enough"),
        ("ab" * 32, "not random enough"),
        ("0123" * 8, "not random enough"),
        (secrets.token_hex(15), "shorter than 32"),
        ("please-change-me-" + secrets.token_hex(16), "placeholder"),
        (DEVELOPMENT_KEY_HASH_SECRET, "development default"),
        (DEVELOPMENT_STORAGE_SIGNING_SECRET, "development default"),
    ],
)
def test_production_refuses_weak_secrets(clean_env: None, value: str, why: str) -> None:
    assert why in (secret_weakness(value) or "")
    with pytest.raises(ValidationError, match="KEY_HASH_SECRET"):
        Settings(environment="production", key_hash_secret=value, storage_signing_secret=_strong())
    with pytest.raises(ValidationError, match="STORAGE_SIGNING_SECRET"):
        Settings(environment="production", key_hash_secret=_strong(), storage_signing_secret=value)
    # Development and tests keep working with anything.
    Settings(environment="development", key_hash_secret=value, storage_signing_secret=value)


def test_random_secrets_pass() -> None:
    for _ in range(200):
        assert secret_weakness(secrets.token_hex(16)) is None  # 32 hex characters, the shortest allowed
        assert secret_weakness(secrets.token_urlsafe(32)) is None


def test_production_refuses_one_secret_for_both(clean_env: None) -> None:
    shared = _strong()
    with pytest.raises(ValidationError, match="must differ"):
        Settings(environment="production", key_hash_secret=shared, storage_signing_secret=shared)


def test_production_refuses_private_urls(clean_env: None) -> None:
    with pytest.raises(ValidationError, match="ALLOW_PRIVATE_URLS"):
        Settings(
            environment="production",
            key_hash_secret=_strong(),
            storage_signing_secret=_strong(),
            allow_private_urls=True,
        )
    assert Settings(environment="development", allow_private_urls=True).allow_private_urls


def test_private_urls_are_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDUB_ALLOW_PRIVATE_URLS", raising=False)
    assert Settings().allow_private_urls is False


def test_a_database_password_with_url_characters_reaches_postgres_intact(
    clean_env: None, postgres_server: str
) -> None:
    # The characters a self-hoster's random password may hold that a URL reserves.
    password = "p@ss:w/rd #%?&+='"
    server = make_url(postgres_server)
    settings = Settings(database_url=server.render_as_string(), database_password=password)

    url = make_url(settings.database_url)
    assert url.password == password
    assert (url.host, url.port, url.database) == (server.host, server.port, server.database)
    # What the poll cache and async reads hand to libpq: the same password once libpq has parsed it.
    conninfo = libpq_conninfo(settings.database_url)
    parsed = conninfo_to_dict(conninfo)
    assert (parsed["password"], parsed["host"], parsed["dbname"]) == (password, server.host, server.database)
    with psycopg.connect(conninfo) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
