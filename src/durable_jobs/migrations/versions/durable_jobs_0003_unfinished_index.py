"""jobs: an index of the unfinished jobs by state and task, for the metrics' scrape

Revision ID: durable_jobs_0003
Revises: durable_jobs_0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "durable_jobs_0003"
down_revision: str | None = "durable_jobs_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Concurrently: a large ledger keeps taking writes while the index is built.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_jobs_unfinished",
            "jobs",
            ["state", "task_name"],
            unique=False,
            postgresql_where=sa.text("state IN ('queued', 'retrying', 'started')"),
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_jobs_unfinished",
            table_name="jobs",
            postgresql_concurrently=True,
            if_exists=True,
        )
