"""jobs: the task's result, its progress, cancel requests of running jobs, status tokens

Revision ID: durable_jobs_0005
Revises: durable_jobs_0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "durable_jobs_0005"
down_revision: str | None = "durable_jobs_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("result", postgresql.JSONB(), nullable=True))
    op.add_column("jobs", sa.Column("progress_done", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("progress_total", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("progress_note", sa.String(200), nullable=True))
    op.add_column("jobs", sa.Column("progress_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "jobs", sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("jobs", sa.Column("status_token_hash", sa.String(64), nullable=True))
    # Each worker's probe looks up the cancel requests of the jobs it runs.
    op.create_index(
        "ix_jobs_cancel_requested",
        "jobs",
        ["worker"],
        postgresql_where=sa.text("cancel_requested_at IS NOT NULL AND state = 'started'"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_cancel_requested", table_name="jobs")
    for column in (
        "status_token_hash",
        "cancel_requested_at",
        "progress_at",
        "progress_note",
        "progress_total",
        "progress_done",
        "result",
    ):
        op.drop_column("jobs", column)
