"""`enqueue`: the one way the application starts a background job."""

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.jobs import ledger
from app.jobs.message import JobMessage
from app.jobs.publisher import background_publisher
from app.models.job import Job
from app.tasks.catalog import TaskSpec

_AFTER_COMMIT = "jobs_to_publish"


def enqueue(session: Session, spec: TaskSpec, **kwargs: Any) -> Job:
    """Record a job in the caller's transaction; it is published once that commits.

    Arguments must be JSON values (ids, not objects). A rollback drops the job with
    the rest of the transaction; a crash after commit leaves it to the relay.
    """
    job = ledger.add_job(session, spec, kwargs)
    publish_after_commit(session, job)
    return job


def publish_after_commit(session: Session, job: Job) -> None:
    session.info.setdefault(_AFTER_COMMIT, []).append(JobMessage.of(job))


@event.listens_for(Session, "after_commit")
def _publish_committed_jobs(session: Session) -> None:
    messages = session.info.pop(_AFTER_COMMIT, None)
    if messages:
        background_publisher.submit(messages)


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back_jobs(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)
