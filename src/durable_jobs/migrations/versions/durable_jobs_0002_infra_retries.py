"""jobs.infra_retries: attempts cut short by the database or the broker going away

Revision ID: durable_jobs_0002
Revises: durable_jobs_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "durable_jobs_0002"
down_revision: str | None = "durable_jobs_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column("infra_retries", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("jobs", "infra_retries")
