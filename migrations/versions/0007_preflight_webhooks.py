"""Preflights keep metadata and a webhook URL, and webhook deliveries can be about a preflight.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("preflights") as batch:
        batch.add_column(sa.Column("metadata", _json(), server_default="{}", nullable=False))
        batch.add_column(sa.Column("webhook_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("webhook_endpoint_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_preflights_webhook_endpoint_id_webhook_endpoints"),
            "webhook_endpoints",
            ["webhook_endpoint_id"],
            ["id"],
        )
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.alter_column("job_id", existing_type=sa.Uuid(), nullable=True)
        batch.add_column(sa.Column("preflight_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_webhook_deliveries_preflight_id_preflights"),
            "preflights",
            ["preflight_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index(op.f("ix_webhook_deliveries_preflight_id"), ["preflight_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_index(op.f("ix_webhook_deliveries_preflight_id"))
        batch.drop_constraint(op.f("fk_webhook_deliveries_preflight_id_preflights"), type_="foreignkey")
        batch.drop_column("preflight_id")
        batch.alter_column("job_id", existing_type=sa.Uuid(), nullable=False)
    with op.batch_alter_table("preflights") as batch:
        batch.drop_constraint(op.f("fk_preflights_webhook_endpoint_id_webhook_endpoints"), type_="foreignkey")
        batch.drop_column("webhook_endpoint_id")
        batch.drop_column("webhook_url")
        batch.drop_column("metadata")
