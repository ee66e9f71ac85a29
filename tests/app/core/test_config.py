from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.core.config import Settings


def test_production_refuses_the_development_secrets() -> None:
    with pytest.raises(ValidationError, match="KEY_HASH_SECRET"):
        Settings(environment="production")
    with pytest.raises(ValidationError, match="STORAGE_SIGNING_SECRET"):
        Settings(environment="production", key_hash_secret="a-real-secret")
    settings = Settings(environment="production", key_hash_secret="x" * 32, storage_signing_secret="y" * 32)
    assert settings.allow_private_urls is False


def test_private_urls_are_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDUB_ALLOW_PRIVATE_URLS", raising=False)
    assert Settings().allow_private_urls is False
