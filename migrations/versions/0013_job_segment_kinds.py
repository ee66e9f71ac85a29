"""Fanned-out jobs assemble in chunks: a job's rows are its segments to render, its chunks to encode and the
join, told apart by `kind`; a rendered segment records whether the renderer changed its frames.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite (the embedded mode) rebuilds the table to change its primary key.
    with op.batch_alter_table("job_segments") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=10), nullable=False, server_default="render"))
        batch.add_column(sa.Column("frames_rendered", sa.Integer(), nullable=True))
        if op.get_bind().dialect.name == "postgresql":
            batch.drop_constraint("pk_job_segments", type_="primary")
        batch.create_primary_key("pk_job_segments", ["job_id", "kind", "index"])
    with op.batch_alter_table("job_segments") as batch:
        batch.alter_column("kind", server_default=None)


def downgrade() -> None:
    op.execute("DELETE FROM job_segments WHERE kind <> 'render'")
    with op.batch_alter_table("job_segments") as batch:
        if op.get_bind().dialect.name == "postgresql":
            batch.drop_constraint("pk_job_segments", type_="primary")
        batch.create_primary_key("pk_job_segments", ["job_id", "index"])
        batch.drop_column("frames_rendered")
        batch.drop_column("kind")
