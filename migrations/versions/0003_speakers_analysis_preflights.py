"""Jobs carry speakers, on_no_face, the analysis summary and frames rendered; preflights get their table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.models.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column("jobs", sa.Column("speakers", _json(), nullable=True))
    # Rows from before this revision were dubbed with the default policy.
    op.add_column(
        "jobs",
        sa.Column("on_no_face", sa.String(length=20), server_default="passthrough", nullable=False),
    )
    op.add_column("jobs", sa.Column("analysis", _json(), nullable=True))
    op.add_column("jobs", sa.Column("frames_rendered", sa.Integer(), nullable=True))
    op.create_table(
        "preflights",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("video_url", sa.Text(), nullable=True),
        sa.Column("audio_url", sa.Text(), nullable=True),
        sa.Column("video_file_id", sa.Uuid(), nullable=True),
        sa.Column("audio_file_id", sa.Uuid(), nullable=True),
        sa.Column("sync_mode", sa.String(length=20), nullable=False),
        sa.Column("speakers", _json(), nullable=True),
        sa.Column("on_no_face", sa.String(length=20), nullable=False),
        sa.Column("max_duration_s", sa.Double(), nullable=False),
        sa.Column("report", _json(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_retryable", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_preflights_api_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["audio_file_id"], ["files.id"], name=op.f("fk_preflights_audio_file_id_files")
        ),
        sa.ForeignKeyConstraint(
            ["video_file_id"], ["files.id"], name=op.f("fk_preflights_video_file_id_files")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_preflights")),
    )
    op.create_index(
        "ix_preflights_account_created", "preflights", ["account_id", "created_at", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_preflights_account_created", table_name="preflights")
    op.drop_table("preflights")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("frames_rendered")
        batch.drop_column("analysis")
        batch.drop_column("on_no_face")
        batch.drop_column("speakers")
