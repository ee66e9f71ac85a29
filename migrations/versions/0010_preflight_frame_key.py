"""Preflights record where their representative frame is stored, so retention can delete it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("preflights", sa.Column("frame_key", sa.String(length=300), nullable=True))


def downgrade() -> None:
    op.drop_column("preflights", "frame_key")
