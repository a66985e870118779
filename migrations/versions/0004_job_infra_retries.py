"""jobs.infra_retries: attempts cut short by the database or the broker going away

Revision ID: 0004_job_infra_retries
Revises: 0003_worker_heartbeats
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_job_infra_retries"
down_revision: str | None = "0003_worker_heartbeats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column("infra_retries", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("jobs", "infra_retries")
