"""Operator actions on the job ledger: list, retry, cancel; and the caller's status token."""

import base64
import binascii
import hashlib
import hmac
import secrets
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
CANCELLABLE = (JobState.SCHEDULED, JobState.QUEUED, JobState.RETRYING, JobState.STARTED)


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
    """Cancel a job. One that is not running ends cancelled at once; a running one keeps
    `started` with `cancel_requested_at` set until its worker stops it (at its next
    `report_progress`, or by terminating its process after JOB_CANCEL_GRACE_SECONDS).
    Asking again while it stops changes nothing."""
    job = get_job(session, job_id, for_update=True)
    if job.state not in CANCELLABLE:
        raise JobStateConflict(job, "cancel", CANCELLABLE)
    if job.cancel_requested_at is None:
        job.cancel_requested_at = func.now()
    if job.state != JobState.STARTED:
        job.state = JobState.CANCELLED
        job.finished_at = func.now()
        job.next_attempt_at = None
    session.flush()
    session.refresh(job)
    return job


STATUS_TOKEN_BYTES = 32
# Longer than any token we issue (43 characters), so a longer one is simply wrong.
STATUS_TOKEN_MAX_LENGTH = 64


class JobStatusNotFound(Exception):
    """No job with this id and token: the two cases are deliberately not told apart."""

    def __init__(self) -> None:
        super().__init__("No such job status")


def grant_status_token(job: Job) -> str:
    """A token that lets its holder read this one job's state, progress and result (at
    the status router), in the caller's transaction. Only its SHA-256 is stored: give the
    token to the caller now, it cannot be read back. A new grant replaces the old one."""
    token = secrets.token_urlsafe(STATUS_TOKEN_BYTES)
    job.status_token_hash = _token_hash(token)
    return token


def get_job_status(session: Session, job_id: str, token: str) -> Job:
    """The job whose status `token` was granted for; JobStatusNotFound for any other id,
    a malformed id, a job without a grant or a wrong token alike."""
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        parsed = None
    presented = _token_hash(token[:STATUS_TOKEN_MAX_LENGTH])
    job = session.get(Job, parsed) if parsed is not None else None
    stored = job.status_token_hash if job is not None else None
    # Compared even when there is nothing to compare with, in constant time.
    matches = hmac.compare_digest(presented, stored or "0" * len(presented))
    if job is None or stored is None or not matches or len(token) > STATUS_TOKEN_MAX_LENGTH:
        raise JobStatusNotFound()
    return job


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def encode_cursor(job: Job) -> str:
    raw = f"{job.created_at.isoformat()}|{job.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(job_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor() from exc
