"""jobs.request_id: the HTTP request that enqueued the job

Revision ID: 0002_job_request_id
Revises: 9c55f7034eed
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_job_request_id"
down_revision: str | None = "9c55f7034eed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("request_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "request_id")
