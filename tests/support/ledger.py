"""Reading the real outcome of jobs: ledger rows and users, straight from PostgreSQL."""

import uuid
from typing import Any

from sqlalchemy import select

from app.core.db import transaction
from app.models.user import User
from durable_jobs import Job, JobState
from durable_jobs.testing import job_row, wait_for_job

__all__ = ["job_row", "new_user_payload", "user_count", "wait_for_job_state", "welcomed_user_ids"]


def wait_for_job_state(job_id: uuid.UUID | str, state: JobState, timeout: float = 20) -> Job:
    return wait_for_job(job_id, state, timeout)


def jobs_by_state() -> dict[str, int]:
    with transaction() as session:
        counts: dict[str, int] = {}
        for state in session.scalars(select(Job.state)):
            counts[state] = counts.get(state, 0) + 1
        return counts


def welcomed_user_ids() -> set[int]:
    with transaction() as session:
        return set(session.scalars(select(User.id).where(User.welcome_email_sent_at.is_not(None))))


def user_count() -> int:
    with transaction() as session:
        return len(list(session.scalars(select(User.id))))


def new_user_payload(n: Any = None) -> dict[str, str]:
    suffix = n if n is not None else uuid.uuid4().hex[:12]
    return {"email": f"user-{suffix}@example.com", "full_name": f"User {suffix}"}
