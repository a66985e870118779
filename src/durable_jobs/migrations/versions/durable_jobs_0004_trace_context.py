"""jobs.traceparent: the trace context of the enqueue, which later steps join

Every publish and run of the job, by whatever process, joins the trace of its enqueue.

Revision ID: durable_jobs_0004
Revises: durable_jobs_0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "durable_jobs_0004"
down_revision: str | None = "durable_jobs_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("traceparent", sa.String(length=128), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "traceparent")
