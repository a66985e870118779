"""jobs.request_id: the HTTP request that enqueued the job

Revision ID: 0002_job_request_id
Revises: 9c55f7034eed
"""

from collections.abc import Sequence

revision: str = "0002_job_request_id"
down_revision: str | None = "9c55f7034eed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """jobs.request_id is created by the engine's first revision (durable_jobs_0001), which the
    first revision of this history depends on; kept so databases stamped here upgrade."""


def downgrade() -> None:
    pass
