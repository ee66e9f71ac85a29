"""Run Alembic migrations from code (`redub db upgrade`, the embedded mode, the tests)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config


def migrations_dir() -> Path:
    """The installed `migrations` package: its scripts and alembic.ini ship as package data."""
    location = resources.files("migrations")
    # Alembic reads the scripts from a directory: a package imported from a zip cannot migrate.
    if not isinstance(location, Path):
        raise RuntimeError(f"the migrations package is not a directory on disk: {location}")
    return location


def alembic_config() -> Config:
    directory = migrations_dir()
    config = Config(str(directory / "alembic.ini"))
    config.set_main_option("script_location", str(directory))
    return config


def upgrade(revision: str = "head") -> None:
    command.upgrade(alembic_config(), revision)
