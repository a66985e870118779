"""Operator actions on the job ledger: list, retry, cancel."""

import base64
import binascii
import uuid
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from durable_jobs._enqueue import publish_after_commit
from durable_jobs._models import Job, JobState


class JobNotFound(Exception):
    def __init__(self, job_id: uuid.UUID) -> None:
        super().__init__(f"No job with id {job_id}")


class JobStateConflict(Exception):
    def __init__(self, job: Job, action: str, allowed: tuple[JobState, ...]) -> None:
        names = ", ".join(state.value for state in allowed)
        super().__init__(f"Cannot {action} job {job.id}: it is {job.state}, not {names}")


class InvalidCursor(Exception):
    def __init__(self) -> None:
        super().__init__("The cursor is malformed; use next_cursor from a previous page")


def get_job(session: Session, job_id: uuid.UUID, *, for_update: bool = False) -> Job:
    job = session.get(Job, job_id, with_for_update=for_update)
    if job is None:
        raise JobNotFound(job_id)
    return job


def list_jobs(
    session: Session,
    *,
    state: JobState | None,
    task_name: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Job], str | None]:
    """Newest first; the cursor is the position of the last job of the previous page."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
    if state is not None:
        query = query.where(Job.state == state)
    if task_name is not None:
        query = query.where(Job.task_name == task_name)
    if cursor is not None:
        created_at, job_id = decode_cursor(cursor)
        query = query.where(tuple_(Job.created_at, Job.id) < tuple_(created_at, job_id))
    jobs = list(session.scalars(query))
    if len(jobs) <= limit:
        return jobs, None
    jobs = jobs[:limit]
    return jobs, encode_cursor(jobs[-1])


RETRYABLE = (JobState.FAILED,)
CANCELLABLE = (JobState.SCHEDULED, JobState.QUEUED, JobState.RETRYING)


def retry_job(session: Session, job_id: uuid.UUID) -> Job:
    """Run a failed job again: same id, a fresh retry budget, one more attempt."""
    job = get_job(session, job_id, for_update=True)
    if job.state not in RETRYABLE:
        raise JobStateConflict(job, "retry", RETRYABLE)
    job.state = JobState.QUEUED
    job.retries = 0
    job.worker_losses = 0
    job.infra_retries = 0
    job.finished_at = None
    job.published_at = None
    job.next_attempt_at = None
    session.flush()
    publish_after_commit(session, job)
    return job


def cancel_job(session: Session, job_id: uuid.UUID) -> Job:
    job = get_job(session, job_id, for_update=True)
    if job.state not in CANCELLABLE:
        raise JobStateConflict(job, "cancel", CANCELLABLE)
    job.state = JobState.CANCELLED
    job.finished_at = func.now()
    job.next_attempt_at = None
    session.flush()
    session.refresh(job)
    return job


def encode_cursor(job: Job) -> str:
    raw = f"{job.created_at.isoformat()}|{job.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(job_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor() from exc
