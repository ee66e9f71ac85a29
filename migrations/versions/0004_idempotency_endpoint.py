"""Idempotency keys remember the endpoint they were first used on.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "idempotency_keys", sa.Column("endpoint", sa.String(length=200), server_default="", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("idempotency_keys", "endpoint")
