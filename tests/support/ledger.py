"""Reading the real outcome of jobs: ledger rows and users, straight from PostgreSQL."""

import uuid
from typing import Any

from sqlalchemy import select

from app.core.db import transaction
from app.models.user import User
from durable_jobs import Job, JobState
from tests.support.processes import wait_until


def job_row(job_id: uuid.UUID | str) -> Job | None:
    with transaction() as session:
        return session.get(Job, uuid.UUID(str(job_id)))


def wait_for_job_state(job_id: uuid.UUID | str, state: JobState, timeout: float = 20) -> Job:
    def reached() -> bool:
        row = job_row(job_id)
        return row is not None and row.state == state

    wait_until(reached, timeout, interval=0.1, what=f"job {job_id} to be {state}")
    row = job_row(job_id)
    assert row is not None
    return row


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
