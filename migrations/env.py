"""Alembic environment: the URL comes from the settings, the target metadata from `app.models`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from app.core.db import get_engine
from app.models import Base

target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things: batch mode rebuilds tables for the embedded database.
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    with get_engine().connect() as new_connection:
        _configure(new_connection)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
