"""Global limits per task, counted in PostgreSQL across every worker and machine.

`@task(..., concurrency=5, rate="100/m")`. Each claim of a limited task locks the
task's row of `task_limits`, so claims of that task are decided one at a time:

- concurrency: the task's started jobs whose lease still runs, other than this one,
  must be fewer than the limit. A killed job's slot comes back when its lease runs
  out, the same moment its recovery may take it over.
- rate "N/period": the task's last N start times (kept in its row) must not all fall
  within the last period: at most N attempts start in any window of that length.

A job over its limit is not run, failed or sent round the broker: it goes back to the
outbox due later (`next_attempt_at`, `published_at` NULL, `limit_hold` saying why), in
its own state, and the relay publishes it when due. A rate-held job is due when its
turn in the window comes; a concurrency-held one is woken as soon as an attempt of its
task ends, and re-checked after a lease length at the latest.
"""

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from durable_jobs import _ledger as ledger
from durable_jobs._message import JobMessage
from durable_jobs._models import FINISHED_STATES, Job, JobState, LimitHold, TaskLimitState
from durable_jobs._runtime import settings as _settings

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
RATE_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
# The window keeps one start time per allowed start, in the task's row.
MAX_RATE_COUNT = 10_000


@dataclass(frozen=True)
class Rate:
    count: int
    period: timedelta

    def __str__(self) -> str:
        return f"{self.count}/{self.period.total_seconds():g}s"


@dataclass(frozen=True)
class TaskLimits:
    concurrency: int | None = None
    rate: Rate | None = None


def parse_rate(text: str) -> Rate:
    """ "100/m", "5/s", "1000/h", "10/30s": N starts per (multiple of a) second, minute,
    hour or day. Raises ValueError naming what is wrong."""
    match = RATE_PATTERN.match(text)
    if match is None:
        raise ValueError(
            f"rate {text!r} is malformed: write N/unit or N/<k><unit> with unit s, m, h or d "
            '(e.g. "100/m", "10/30s")'
        )
    count, multiple, unit = int(match[1]), int(match[2] or 1), match[3]
    if count == 0 or multiple == 0:
        raise ValueError(f"rate {text!r} cannot work: it would never let a job start")
    if count > MAX_RATE_COUNT:
        raise ValueError(f"rate {text!r} allows over {MAX_RATE_COUNT} starts per window")
    return Rate(count, timedelta(seconds=multiple * UNIT_SECONDS[unit]))


def task_limits(name: str, concurrency: int | None, rate: str | None) -> TaskLimits | None:
    """The limits a task declares, or None; raises ValueError for one that cannot work."""
    if concurrency is not None and (
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
    ):
        raise ValueError(
            f"{name}: concurrency={concurrency!r} cannot work: it must be a whole number of "
            "jobs at once, 1 or more"
        )
    try:
        parsed = None if rate is None else parse_rate(rate)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if concurrency is None and parsed is None:
        return None
    return TaskLimits(concurrency, parsed)


def claim_within_limits(
    session: Session,
    job_id: uuid.UUID,
    task_name: str,
    limits: TaskLimits,
    holder: ledger.Holder,
    holder_is_gone: Callable[[int], bool],
) -> ledger.Claim:
    """`ledger.claim`, decided under the task's limit lock: the job starts if its task
    is within its limits, and otherwise waits in the outbox (ClaimRefusal.OVER_LIMIT)."""
    starts = _lock_task(session, task_name)
    now = session.scalar(select(func.clock_timestamp()))
    assert now is not None
    job = session.get(Job, job_id, with_for_update=True)
    if job is None or _not_claimable_now(job, now):
        # Unknown, finished, or running (a takeover by its own node keeps its own slot).
        return ledger.claim(session, job_id, holder, holder_is_gone)
    hold = _over_limit(session, job, limits, starts, now)
    if hold is not None:
        reason, due = hold
        if job.state in ledger.RUNNABLE:
            job.limit_hold = reason
            job.next_attempt_at = due
            job.published_at = None
            job.lease_expires_at = None
        # A lapsed started job stays as it is: the relay re-queues it again later.
        return ledger.Claim(refusal=ledger.ClaimRefusal.OVER_LIMIT, state=JobState(job.state))
    job.limit_hold = None
    session.flush()
    claim = ledger.claim(session, job_id, holder, holder_is_gone)
    if claim.attempt is not None and limits.rate is not None:
        recent = [*starts, now][-limits.rate.count :]
        session.execute(
            update(TaskLimitState)
            .where(TaskLimitState.task_name == task_name)
            .values(starts=recent)
        )
    return claim


def _held_for_a_slot(task_name: str) -> Select[uuid.UUID]:
    return (
        select(Job.id)
        .where(
            Job.task_name == task_name,
            Job.limit_hold == LimitHold.CONCURRENCY,
            Job.state.in_(ledger.RUNNABLE),
            Job.published_at.is_(None),
        )
        .order_by(Job.created_at, Job.id)
    )


def any_held_for_a_slot(executor: ledger.Executor, task_name: str) -> bool:
    """One indexed look-up: most attempts end with no job waiting for their slot."""
    return executor.scalar(_held_for_a_slot(task_name).limit(1)) is not None


def wake_held_jobs(session: Session, task_name: str, concurrency: int) -> list[JobMessage]:
    """After an attempt of a concurrency-limited task ends, make the oldest jobs held for
    a slot due now, one per free slot; the caller publishes the messages returned.

    Without the task's lock (most attempts end with nobody waiting): a job held at this
    very moment is woken by its own claimer, which calls this again once its hold is
    committed. A woken job that finds its slot taken by a newer job waits for the next
    attempt to end."""
    held = _held_for_a_slot(task_name)
    now = session.scalar(select(func.clock_timestamp()))
    free = concurrency - _running(session, task_name, now)
    if free <= 0:
        return []
    oldest = held.limit(free).with_for_update(skip_locked=True)
    woken = session.scalars(
        update(Job)
        .where(Job.id.in_(oldest))
        # No longer held: the publisher's mark applies to it again.
        .values(next_attempt_at=func.now(), limit_hold=None)
        .returning(Job)
    )
    return [JobMessage.of(job) for job in woken]


def _running(session: Session, task_name: str, now: object, but: uuid.UUID | None = None) -> int:
    """The task's started jobs whose lease still runs (a killed one's lapses with it)."""
    query = select(func.count()).where(
        Job.task_name == task_name,
        Job.state == JobState.STARTED,
        Job.lease_expires_at > now,
    )
    if but is not None:
        query = query.where(Job.id != but)
    return session.scalar(query) or 0


def _lock_task(session: Session, task_name: str) -> list[datetime]:
    session.execute(insert(TaskLimitState).values(task_name=task_name).on_conflict_do_nothing())
    starts = session.scalar(
        select(TaskLimitState.starts).where(TaskLimitState.task_name == task_name).with_for_update()
    )
    return list(starts or [])


def _not_claimable_now(job: Job, now: datetime) -> bool:
    if job.state in FINISHED_STATES:
        return True
    lease = job.lease_expires_at
    return job.state == JobState.STARTED and lease is not None and lease > now


def _over_limit(
    session: Session, job: Job, limits: TaskLimits, starts: list[datetime], now: datetime
) -> tuple[LimitHold, datetime] | None:
    if limits.concurrency is not None:
        if _running(session, job.task_name, now, but=job.id) >= limits.concurrency:
            # Woken when an attempt of the task ends; a killed one's slot comes back
            # within a lease, so that is the longest a held job waits unchecked.
            return LimitHold.CONCURRENCY, now + timedelta(seconds=_settings().job_lease_seconds)
    rate = limits.rate
    if rate is not None:
        in_window = [start for start in starts if start > now - rate.period]
        if len(in_window) >= rate.count:
            return LimitHold.RATE, _turn_in_window(session, job, rate, in_window, now)
    return None


def _turn_in_window(
    session: Session, job: Job, rate: Rate, in_window: list[datetime], now: datetime
) -> datetime:
    """When this job's turn comes: the jobs already held for the rate go first, one per
    start that leaves the window, so they come back spread out instead of all at once."""
    ahead = (
        session.scalar(
            select(func.count()).where(
                Job.task_name == job.task_name,
                Job.limit_hold == LimitHold.RATE,
                Job.state.in_(ledger.RUNNABLE),
                Job.published_at.is_(None),
                Job.next_attempt_at > now,
                Job.id != job.id,
            )
        )
        or 0
    )
    window = in_window[-rate.count :]
    return window[ahead % rate.count] + rate.period * (1 + ahead // rate.count)
