"""Uploads can be deleted: the object goes, the row stays marked for the jobs that name it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("files", sa.Column("deleted_at", app.models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("files", "deleted_at")
