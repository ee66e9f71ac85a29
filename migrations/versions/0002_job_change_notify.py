"""Notify listeners when a job row changes, so API processes can cache status polls exactly.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 13:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "redub_jobs"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite (embedded mode) has no NOTIFY; its polls are not cached
    op.execute(
        f"""
        CREATE FUNCTION redub_notify_job_change() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', COALESCE(NEW.id, OLD.id)::text);
            RETURN NEW;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER jobs_notify_change AFTER UPDATE OR DELETE ON jobs "
        "FOR EACH ROW EXECUTE FUNCTION redub_notify_job_change()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS jobs_notify_change ON jobs")
    op.execute("DROP FUNCTION IF EXISTS redub_notify_job_change()")
