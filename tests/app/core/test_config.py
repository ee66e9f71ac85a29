from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from app.core.config import Settings


def test_production_refuses_the_development_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only what the test passes counts: the service fixtures may have set REDUB_* for the whole session.
    for name in [name for name in os.environ if name.startswith("REDUB_")]:
        monkeypatch.delenv(name)
    with pytest.raises(ValidationError, match="KEY_HASH_SECRET"):
        Settings(environment="production")
    with pytest.raises(ValidationError, match="STORAGE_SIGNING_SECRET"):
        Settings(environment="production", key_hash_secret="a-real-secret")
    settings = Settings(environment="production", key_hash_secret="x" * 32, storage_signing_secret="y" * 32)
    assert settings.allow_private_urls is False


def test_private_urls_are_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDUB_ALLOW_PRIVATE_URLS", raising=False)
    assert Settings().allow_private_urls is False
