"""Scheduled jobs, unique jobs and periodic schedules: jobs due later are found by their
time (ix_jobs_due); job_unique_keys holds each unique key; job_schedules and
job_schedule_ticks hold the periodic schedules and the one job of each tick

Revision ID: durable_jobs_0007
Revises: durable_jobs_0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "durable_jobs_0007"
down_revision: str | None = "durable_jobs_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_due",
        "jobs",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL AND next_attempt_at IS NOT NULL"),
    )
    op.create_table(
        "job_unique_keys",
        sa.Column("task_name", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], ondelete="CASCADE", deferrable=True, initially="DEFERRED"
        ),
        sa.PrimaryKeyConstraint("task_name", "key"),
    )
    op.create_index("ix_job_unique_keys_job_id", "job_unique_keys", ["job_id"], unique=False)
    op.create_table(
        "job_schedules",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("task_name", sa.String(length=200), nullable=False),
        sa.Column("kwargs", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=True),
        sa.Column("interval_seconds", sa.Float(), nullable=True),
        sa.Column("catch_up", sa.String(length=20), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("next_tick_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_tick_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_job_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("name"),
    )
    # One row per tick: its primary key is what lets each tick enqueue exactly one job.
    op.create_table(
        "job_schedule_ticks",
        sa.Column("schedule_name", sa.String(length=200), nullable=False),
        sa.Column("tick_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column(
            "enqueued_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(["schedule_name"], ["job_schedules.name"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("schedule_name", "tick_at"),
    )


def downgrade() -> None:
    op.drop_table("job_schedule_ticks")
    op.drop_table("job_schedules")
    op.drop_table("job_unique_keys")
    op.drop_index("ix_jobs_due", table_name="jobs")
