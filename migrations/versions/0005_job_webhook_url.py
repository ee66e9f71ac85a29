"""Jobs keep the webhook URL they were given, to echo it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("webhook_url", sa.Text(), nullable=True))
    # Earlier jobs: the URL of the endpoint they deliver to.
    op.execute(
        "UPDATE jobs SET webhook_url = (SELECT url FROM webhook_endpoints WHERE webhook_endpoints.id = "
        "jobs.webhook_endpoint_id) WHERE webhook_endpoint_id IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_column("jobs", "webhook_url")
