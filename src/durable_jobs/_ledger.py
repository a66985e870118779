"""State changes of the job ledger, each guarded so a late or duplicate message
cannot move a job backwards. Callers own the transaction."""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    CursorResult,
    and_,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from durable_jobs._context import request_id_var
from durable_jobs._models import FINISHED_STATES, Job, JobState
from durable_jobs._runtime import settings as _settings
from durable_jobs._settings import JobsSettings

if TYPE_CHECKING:
    from durable_jobs._declare import TaskPolicy

logger = logging.getLogger(__name__)

ERROR_TEXT_LIMIT = 2000
RUNNABLE = (JobState.QUEUED, JobState.RETRYING)
_cancel_requested = Job.cancel_requested_at.is_not(None)
# The states of a job the relay may (re)publish from the outbox.
OUTBOX_STATES = (JobState.SCHEDULED, JobState.QUEUED, JobState.RETRYING, JobState.STARTED)

# Single guarded statements run on a session or on an autocommit connection alike.
Executor = Session | Connection


class ClaimRefusal(StrEnum):
    UNTRACKED = "untracked"
    FINISHED = "finished"
    RUNNING_ELSEWHERE = "running elsewhere"
    TOO_MANY_WORKER_LOSSES = "too many worker losses"
    # Back in the outbox, due later: its task is at its concurrency or rate limit.
    OVER_LIMIT = "held back by its task's limit"


@dataclass(frozen=True)
class Claim:
    """The outcome of a worker asking to run a job: an attempt number or a refusal."""

    attempt: int | None = None
    refusal: ClaimRefusal | None = None
    state: JobState | None = None
    request_id: str | None = None
    traceparent: str | None = None
    # From the job's enqueue to this claim, by the database's clock.
    waited_seconds: float | None = None


@dataclass(frozen=True)
class Holder:
    """The worker node and process that ask to run a job."""

    node: str
    pid: int


def add_job(
    session: Session,
    settings: JobsSettings,
    spec: "TaskPolicy",
    kwargs: dict[str, Any],
    traceparent: str | None = None,
    *,
    due_at: datetime | None = None,
    job_id: uuid.UUID | None = None,
) -> Job:
    """Add a job to the outbox: to publish now, or, with `due_at`, scheduled for then."""
    job = Job(
        id=job_id or uuid.uuid4(),
        task_name=spec.name,
        kwargs=kwargs,
        queue=spec.queue_for(settings),
        state=JobState.QUEUED if due_at is None else JobState.SCHEDULED,
        next_attempt_at=due_at,
        attempts=0,
        worker_losses=0,
        retries=0,
        max_attempts=spec.max_attempts(settings),
        request_id=request_id_var.get(),
        traceparent=traceparent,
        priority=spec.priority,
    )
    session.add(job)
    session.flush()
    return job


def claim_runnable(connection: Executor, job_id: uuid.UUID, holder: Holder) -> Claim | None:
    """The common case in one statement: a queued or retrying job becomes the holder's.

    Returns None when the job is in any other state (or unknown), for `claim` to
    decide under a row lock.
    """
    return _start_attempt(
        connection, job_id, holder, Job.state.in_(RUNNABLE), Job.cancel_requested_at.is_(None)
    )


def claim(
    session: Session, job_id: uuid.UUID, holder: Holder, holder_is_gone: Callable[[int], bool]
) -> Claim:
    """Make `holder` the runner of the job, or say why it must not run it.

    A job still marked started belongs to its holder until the lease expires, unless
    that holder was a process of this very node that no longer exists.
    """
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        return Claim(refusal=ClaimRefusal.UNTRACKED)
    state = JobState(job.state)
    if state in FINISHED_STATES:
        return Claim(refusal=ClaimRefusal.FINISHED, state=state)
    if state is JobState.STARTED:
        assert job.lease_expires_at is not None
        now = session.scalar(select(func.now()))
        holder_died_here = (
            job.worker == holder.node
            and job.worker_pid is not None
            and job.worker_pid != holder.pid
            and holder_is_gone(job.worker_pid)
        )
        if now is not None and job.lease_expires_at > now and not holder_died_here:
            return Claim(refusal=ClaimRefusal.RUNNING_ELSEWHERE, state=state)
        if job.cancel_requested_at is None:
            job.worker_losses += 1
        if job.worker_losses >= _settings().job_max_worker_losses:
            _finish(job, JobState.FAILED, f"worker lost {job.worker_losses} times while running it")
            logger.error("Job %s failed: its worker was lost %d times", job.id, job.worker_losses)
            return Claim(refusal=ClaimRefusal.TOO_MANY_WORKER_LOSSES, state=JobState.FAILED)
    if job.cancel_requested_at is not None:
        # Asked to cancel while no attempt held it (or its holder is gone): it ends here.
        job.state = JobState.CANCELLED
        job.finished_at = func.now()
        job.lease_expires_at = None
        job.next_attempt_at = None
        logger.info("Job %s is cancelled: it was asked to stop before this delivery", job.id)
        return Claim(refusal=ClaimRefusal.FINISHED, state=JobState.CANCELLED)
    session.flush()
    started = _start_attempt(session, job_id, holder)
    assert started is not None, "the row is locked by this transaction"
    return started


def _start_attempt(
    executor: Executor, job_id: uuid.UUID, holder: Holder, *conditions: Any
) -> Claim | None:
    row = executor.execute(
        update(Job)
        .where(Job.id == job_id, *conditions)
        .values(
            state=JobState.STARTED,
            attempts=Job.attempts + 1,
            worker=holder.node,
            worker_pid=holder.pid,
            started_at=func.now(),
            lease_expires_at=func.now() + timedelta(seconds=_settings().job_lease_seconds),
            next_attempt_at=None,
            # A delivered job was published, whatever the publisher has recorded yet.
            published_at=func.coalesce(Job.published_at, func.now()),
        )
        .returning(
            Job.attempts,
            Job.request_id,
            Job.traceparent,
            func.extract("epoch", func.now() - Job.created_at).label("waited"),
        )
    ).first()
    if row is None:
        return None
    return Claim(
        attempt=row.attempts,
        request_id=row.request_id,
        traceparent=row.traceparent,
        waited_seconds=float(row.waited),
    )


def mark_succeeded(session: Executor, job_id: uuid.UUID, attempt: int) -> bool:
    return _finish_attempt(session, job_id, attempt, JobState.SUCCEEDED, error=None)


def record_success(
    executor: Executor, job_id: uuid.UUID, attempt: int, result: Any
) -> JobState | None:
    """Record the attempt's success and its result, or `cancelled` if a cancel was asked
    for meanwhile (the result is then dropped). None: the attempt was no longer this
    one's to record."""
    return _record_outcome(executor, job_id, attempt, JobState.SUCCEEDED, None, result)


def record_cancelled(executor: Executor, job_id: uuid.UUID, attempt: int) -> bool:
    """The attempt stopped at a cancel request (`JobCancelled`)."""
    state = _record_outcome(executor, job_id, attempt, JobState.CANCELLED, None, None)
    return state is JobState.CANCELLED


class ProgressOutcome(StrEnum):
    RECORDED = "recorded"
    CANCEL_REQUESTED = "cancel requested"
    NOT_HELD = "not held"


def record_progress(
    executor: Executor,
    job_id: uuid.UUID,
    attempt: int,
    done: int,
    total: int | None,
    note: str | None,
) -> ProgressOutcome:
    """Write the attempt's progress; the same statement reads whether a cancel was asked
    for, so a task that reports progress learns of it at no extra cost."""
    row = executor.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.STARTED, Job.attempts == attempt)
        .values(
            progress_done=done, progress_total=total, progress_note=note, progress_at=func.now()
        )
        .returning(Job.cancel_requested_at)
    ).first()
    if row is None:
        state = executor.scalar(select(Job.state).where(Job.id == job_id))
        # Cancelled under it (past the grace period, by the worker's probe): stop too.
        if state == JobState.CANCELLED:
            return ProgressOutcome.CANCEL_REQUESTED
        return ProgressOutcome.NOT_HELD
    if row.cancel_requested_at is not None:
        return ProgressOutcome.CANCEL_REQUESTED
    return ProgressOutcome.RECORDED


def mark_failed(session: Executor, job_id: uuid.UUID, attempt: int, error: str) -> bool:
    return _finish_attempt(session, job_id, attempt, JobState.FAILED, error=error)


def mark_retrying(
    session: Executor, job_id: uuid.UUID, attempt: int, error: str, countdown: float
) -> bool:
    """Record that the attempt failed and another is due `countdown` seconds on: back in
    the outbox, for the relay to publish then (no message waits in the broker meanwhile)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.STARTED, Job.attempts == attempt)
        .values(
            # A job asked to cancel is not tried again: it ends cancelled.
            state=case(
                (_cancel_requested, literal(JobState.CANCELLED.value)),
                else_=JobState.RETRYING.value,
            ),
            last_error=error[:ERROR_TEXT_LIMIT],
            lease_expires_at=None,
            retries=Job.retries + 1,
            finished_at=case((_cancel_requested, func.now()), else_=None),
            next_attempt_at=case(
                (_cancel_requested, None), else_=func.now() + timedelta(seconds=countdown)
            ),
            # Back in the outbox: the relay publishes it when due.
            published_at=None,
        )
    )
    return _changed(result)


def schedule_infrastructure_retry(
    executor: Executor, job_id: uuid.UUID, attempt: int, error: str
) -> JobState | None:
    """Record that the attempt was cut short by the database or the broker going away.

    Within the budget the job goes back to the outbox as retrying, due after a backoff
    (the relay publishes it then); past it the job fails. Returns the new state, or
    None if the attempt was no longer this one's to record.
    """
    settings = _settings()
    exhausted = Job.infra_retries >= settings.job_infrastructure_retries
    backoff = func.least(
        settings.job_infrastructure_backoff_seconds
        * func.power(2, Job.infra_retries)
        * (0.5 + func.random()),
        settings.job_infrastructure_backoff_max_seconds,
    )
    failed_text = func.concat(
        "infrastructure error on ", Job.infra_retries + 1, " attempts in a row: ", error
    )
    row = executor.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.STARTED, Job.attempts == attempt)
        .values(
            state=case((exhausted, literal(JobState.FAILED.value)), else_=JobState.RETRYING.value),
            infra_retries=Job.infra_retries + 1,
            last_error=func.left(
                case((exhausted, failed_text), else_="infrastructure error: " + error),
                ERROR_TEXT_LIMIT,
            ),
            lease_expires_at=None,
            finished_at=case((exhausted, func.now()), else_=None),
            next_attempt_at=case(
                (exhausted, None), else_=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, backoff)
            ),
            # Back in the outbox: the relay publishes it once it is due.
            published_at=case((exhausted, Job.published_at), else_=None),
        )
        .returning(Job.state)
    ).first()
    return None if row is None else JobState(row.state)


def mark_unrunnable(session: Session, job_id: uuid.UUID, reason: str) -> bool:
    """Fail a job no worker can run (its task is unknown, or its message was refused)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state.in_([JobState.QUEUED, JobState.RETRYING]))
        .values(state=JobState.FAILED, finished_at=func.now(), last_error=reason[:ERROR_TEXT_LIMIT])
    )
    return _changed(result)


def mark_published(
    session: Session,
    job_ids: list[uuid.UUID],
    states: tuple[JobState, ...] = OUTBOX_STATES,
    *,
    held_too: bool = False,
) -> None:
    """Record the jobs as handed to the broker, those still in one of `states`. A job its
    task's limit put back into the outbox since (`limit_hold`) is left there, unless
    `held_too`: that mark comes late, from a publish before the hold (the relay's rows
    are locked, so its marks never do)."""
    held_ok = literal(True) if held_too else Job.limit_hold.is_(None)
    session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.published_at.is_(None), Job.state.in_(states), held_ok)
        .values(
            published_at=func.now(),
            # A scheduled job whose time came is queued like any other once published.
            state=case(
                (Job.state == JobState.SCHEDULED, literal(JobState.QUEUED.value)),
                else_=Job.state,
            ),
        )
    )


def lock_unpublished(session: Session, limit: int, min_age_seconds: float) -> list[Job]:
    """The oldest outbox rows, locked so that concurrent relays share the work."""
    return list(
        session.scalars(
            select(Job)
            .where(
                Job.published_at.is_(None),
                or_(
                    Job.created_at <= func.now() - timedelta(seconds=min_age_seconds),
                    # A job with a time of its own was never the API's to publish.
                    Job.next_attempt_at.is_not(None),
                ),
                or_(Job.next_attempt_at.is_(None), Job.next_attempt_at <= func.now()),
                Job.state.in_(OUTBOX_STATES),
            )
            .order_by(Job.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def seconds_until_next_due(session: Session) -> float | None:
    """How long until the next job of the outbox falls due (a scheduled job, a retry);
    None when none waits for a time still to come."""
    seconds = session.scalar(
        select(func.extract("epoch", func.min(Job.next_attempt_at) - func.clock_timestamp())).where(
            Job.published_at.is_(None),
            Job.next_attempt_at > func.now(),
            Job.state.in_(OUTBOX_STATES),
        )
    )
    return None if seconds is None else max(0.0, float(seconds))


def requeue_abandoned(session: Session) -> int:
    """Put back into the outbox the jobs whose message may be gone: a started job whose
    lease ran out, a retry that is long overdue, a queued job nobody claimed."""
    settings = _settings()
    stale = func.now() - timedelta(seconds=settings.effective_visibility_timeout)
    lease_ran_out = and_(
        Job.state == JobState.STARTED,
        Job.lease_expires_at < func.now(),
        or_(Job.published_at < Job.lease_expires_at, Job.published_at < stale),
    )
    retry_overdue = and_(
        Job.state == JobState.RETRYING,
        Job.next_attempt_at < stale,
        Job.published_at < stale,
    )
    never_claimed = and_(
        Job.state == JobState.QUEUED,
        Job.published_at < func.now() - timedelta(seconds=settings.job_republish_after_seconds),
    )
    result = session.execute(
        update(Job)
        .where(or_(lease_ran_out, retry_overdue, never_claimed))
        .values(published_at=None)
    )
    return result.rowcount if isinstance(result, CursorResult) else 0


def prune_finished(session: Session) -> int:
    """Delete finished jobs past their retention; failed ones are kept longer."""
    settings = _settings()
    now = func.now()
    finished_ok = and_(
        Job.state.in_([JobState.SUCCEEDED, JobState.CANCELLED]),
        Job.finished_at < now - timedelta(days=settings.job_retention_days),
    )
    failed = and_(
        Job.state == JobState.FAILED,
        Job.finished_at < now - timedelta(days=settings.failed_job_retention_days),
    )
    result = session.execute(delete(Job).where(or_(finished_ok, failed)))
    return result.rowcount if isinstance(result, CursorResult) else 0


def _finish_attempt(
    session: Executor, job_id: uuid.UUID, attempt: int, state: JobState, error: str | None
) -> bool:
    return _record_outcome(session, job_id, attempt, state, error, None) is not None


def _record_outcome(
    executor: Executor,
    job_id: uuid.UUID,
    attempt: int,
    state: JobState,
    error: str | None,
    result: Any,
) -> JobState | None:
    """Finish the attempt as `state`, unless a cancel was asked for: then as cancelled,
    so a cancelled job never reports success."""
    row = executor.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.STARTED, Job.attempts == attempt)
        .values(
            state=case((_cancel_requested, literal(JobState.CANCELLED.value)), else_=state.value),
            finished_at=func.now(),
            lease_expires_at=None,
            last_error=error[:ERROR_TEXT_LIMIT] if error is not None else Job.last_error,
            result=case((_cancel_requested, None), else_=literal(result, Job.result.type)),
        )
        .returning(Job.state)
    ).first()
    return None if row is None else JobState(row.state)


def _finish(job: Job, state: JobState, error: str) -> None:
    job.state = state
    job.last_error = error
    job.finished_at = func.now()
    job.lease_expires_at = None


def _changed(result: Any) -> bool:
    return isinstance(result, CursorResult) and result.rowcount == 1
