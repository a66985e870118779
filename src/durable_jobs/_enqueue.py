"""`enqueue`: the one way a job starts, inside the caller's transaction."""

from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanKind
from sqlalchemy import event
from sqlalchemy.orm import Session

from durable_jobs import _ledger as ledger
from durable_jobs import _runtime
from durable_jobs._message import JobMessage
from durable_jobs._models import Job
from durable_jobs._tracing import current_traceparent

if TYPE_CHECKING:
    from durable_jobs._declare import TaskPolicy

_AFTER_COMMIT = "jobs_to_publish"


def add_and_publish_after_commit(
    session: Session, policy: "TaskPolicy", kwargs: dict[str, Any]
) -> Job:
    """Record a job in the caller's transaction; it is published once that commits.

    Arguments must be JSON values (ids, not objects). A rollback drops the job with
    the rest of the transaction; a crash after commit leaves it to the relay.
    """
    runtime = _runtime.current()
    if runtime.tracer is None:
        job = ledger.add_job(session, runtime.settings, policy, kwargs)
    else:
        with runtime.tracer.start_as_current_span(
            f"enqueue {policy.name}",
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "celery", "job.task": policy.name},
        ) as span:
            job = ledger.add_job(
                session, runtime.settings, policy, kwargs, traceparent=current_traceparent()
            )
            span.set_attribute("job.id", str(job.id))
    publish_after_commit(session, job)
    return job


def publish_after_commit(session: Session, job: Job) -> None:
    session.info.setdefault(_AFTER_COMMIT, []).append(JobMessage.of(job))


@event.listens_for(Session, "after_commit")
def _publish_committed_jobs(session: Session) -> None:
    messages = session.info.pop(_AFTER_COMMIT, None)
    if messages:
        _runtime.current().publisher.submit(messages)


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back_jobs(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)


def take_messages_to_publish(session: Session) -> list[JobMessage]:
    """The jobs this transaction would publish after its commit, left for the caller to
    publish itself (a short-lived process that cannot wait for the background thread)."""
    messages: list[JobMessage] = session.info.pop(_AFTER_COMMIT, [])
    return messages
