"""The Alembic history builds exactly the schema of `app.models`, on Postgres and on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect


def test_migrated_postgres_matches_the_models(service_env: dict[str, str]) -> None:
    from app.core.db import get_engine
    from app.models import Base

    with get_engine().connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_migrations_run_on_sqlite_for_the_embedded_mode(
    service_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.config import get_settings
    from app.core.migrate import upgrade
    from app.models import Base

    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    monkeypatch.setenv("REDUB_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        upgrade()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)
    engine.dispose()
