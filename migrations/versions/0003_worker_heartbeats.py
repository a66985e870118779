"""worker_heartbeats: each worker's latest heartbeat, for /health/workers

Revision ID: 0003_worker_heartbeats
Revises: 0002_job_request_id
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_worker_heartbeats"
down_revision: str | None = "0002_job_request_id"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("name", sa.String(length=255), primary_key=True),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "beat_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("active_jobs", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("stuck_jobs", sa.Integer(), nullable=False),
        sa.Column("broker_connected", sa.Boolean(), nullable=False),
        sa.Column("loop_stalled", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
