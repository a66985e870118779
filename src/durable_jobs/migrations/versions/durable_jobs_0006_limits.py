"""Limits and priorities: task_limits, jobs.limit_hold, jobs.priority, the limited claim's indexes

Revision ID: durable_jobs_0006
Revises: durable_jobs_0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "durable_jobs_0006"
down_revision: str | None = "durable_jobs_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("limit_hold", sa.String(length=20), nullable=True))
    op.add_column("jobs", sa.Column("priority", sa.SmallInteger(), nullable=True))
    op.create_index(
        "ix_jobs_started_task",
        "jobs",
        ["task_name"],
        postgresql_where=sa.text("state = 'started'"),
    )
    op.create_index(
        "ix_jobs_limit_hold",
        "jobs",
        ["task_name", "created_at"],
        postgresql_where=sa.text("limit_hold IS NOT NULL"),
    )
    op.create_table(
        "task_limits",
        sa.Column("task_name", sa.String(length=200), primary_key=True),
        sa.Column(
            "starts",
            postgresql.ARRAY(sa.DateTime(timezone=True)),
            server_default="{}",
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_table("task_limits")
    op.drop_index("ix_jobs_limit_hold", table_name="jobs")
    op.drop_index("ix_jobs_started_task", table_name="jobs")
    op.drop_column("jobs", "priority")
    op.drop_column("jobs", "limit_hold")
