"""`enqueue`: the one way a job starts, inside the caller's transaction."""

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanKind
from sqlalchemy import event
from sqlalchemy.orm import Session

from durable_jobs import _ledger as ledger
from durable_jobs import _runtime
from durable_jobs._message import JobMessage
from durable_jobs._models import Job
from durable_jobs._tracing import current_traceparent
from durable_jobs._unique import check_unique_key, claim_unique_key

if TYPE_CHECKING:
    from durable_jobs._declare import TaskPolicy

_AFTER_COMMIT = "jobs_to_publish"


@dataclass(frozen=True)
class JobOptions:
    """When a job runs: at `run_at` (an aware datetime) or `countdown` seconds from now.
    None of them, or a time already past, runs it now.

    With `unique_key`, an enqueue while another job of the task holds the key returns
    that job and writes nothing: the key is held while its job is unfinished, or for
    `unique_for` (seconds or a timedelta) from the enqueue whatever the job does.
    """

    run_at: datetime | None = None
    countdown: float | None = None
    unique_key: str | None = None
    unique_for: timedelta | None = None

    def __post_init__(self) -> None:
        if self.unique_key is not None:
            check_unique_key(self.unique_key)
        if self.unique_for is not None:
            if self.unique_key is None:
                raise ValueError("unique_for needs a unique_key")
            if self.unique_for <= timedelta(0):
                raise ValueError(f"unique_for must be a positive period, not {self.unique_for}")
        if self.run_at is not None and self.countdown is not None:
            raise ValueError("give run_at or countdown, not both")
        if self.run_at is not None and self.run_at.tzinfo is None:
            raise ValueError("run_at must be timezone-aware (datetime.now(UTC) + ...)")
        if self.countdown is not None and not math.isfinite(self.countdown):
            raise ValueError(f"countdown must be a finite number of seconds, not {self.countdown}")

    def due_at(self) -> datetime | None:
        """The job's time if it is still to come; None to run it now."""
        now = datetime.now(UTC)
        if self.countdown is not None:
            due = now + timedelta(seconds=self.countdown)
        elif self.run_at is not None:
            due = self.run_at
        else:
            return None
        return due if due > now else None


NOW = JobOptions()


def add_and_publish_after_commit(
    session: Session, policy: "TaskPolicy", kwargs: dict[str, Any], options: JobOptions = NOW
) -> Job:
    """Record a job in the caller's transaction; it is published once that commits, or
    by the relay once it is due when it is scheduled for later.

    Arguments must be JSON values (ids, not objects). A rollback drops the job with
    the rest of the transaction; a crash after commit leaves it to the relay.
    """
    runtime = _runtime.current()
    due_at = options.due_at()
    job_id = uuid.uuid4()
    if options.unique_key is not None:
        holder = claim_unique_key(
            session, policy.name, options.unique_key, job_id, options.unique_for
        )
        if holder != job_id:
            existing = session.get(Job, holder)
            assert existing is not None, "the job holding a unique key exists"
            return existing
    if runtime.tracer is None:
        job = ledger.add_job(
            session, runtime.settings, policy, kwargs, due_at=due_at, job_id=job_id
        )
    else:
        with runtime.tracer.start_as_current_span(
            f"enqueue {policy.name}",
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "celery", "job.task": policy.name},
        ) as span:
            job = ledger.add_job(
                session,
                runtime.settings,
                policy,
                kwargs,
                traceparent=current_traceparent(),
                due_at=due_at,
                job_id=job_id,
            )
            span.set_attribute("job.id", str(job.id))
    if due_at is None:
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
