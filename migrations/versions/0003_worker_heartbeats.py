"""worker_heartbeats: each worker's latest heartbeat, for /health/workers

Revision ID: 0003_worker_heartbeats
Revises: 0002_job_request_id
"""

from collections.abc import Sequence

revision: str = "0003_worker_heartbeats"
down_revision: str | None = "0002_job_request_id"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """worker_heartbeats is created by the engine's first revision (durable_jobs_0001), which the
    first revision of this history depends on; kept so databases stamped here upgrade."""


def downgrade() -> None:
    pass
