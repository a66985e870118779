"""The ledger in numbers, for an operator: jobs per task and state, and the backlog."""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from durable_jobs._models import Job, JobState

OUTBOX_STATES = (JobState.QUEUED, JobState.RETRYING, JobState.STARTED)


@dataclass
class JobStats:
    # {task name: {state: jobs}}, states with no job left out.
    by_task: dict[str, dict[str, int]] = field(default_factory=dict)
    by_state: dict[str, int] = field(default_factory=dict)
    # Committed jobs not yet handed to the broker (the relay's work), due or not.
    outbox: int = 0
    oldest_queued_at: datetime | None = None


def job_stats(session: Session) -> JobStats:
    stats = JobStats(by_state={state.value: 0 for state in JobState})
    rows = session.execute(
        select(Job.task_name, Job.state, func.count()).group_by(Job.task_name, Job.state)
    )
    for task_name, state, count in rows:
        stats.by_task.setdefault(task_name, {})[str(state)] = count
        stats.by_state[str(state)] = stats.by_state.get(str(state), 0) + count
    stats.outbox = (
        session.scalar(
            select(func.count()).where(Job.published_at.is_(None), Job.state.in_(OUTBOX_STATES))
        )
        or 0
    )
    stats.oldest_queued_at = session.scalar(
        select(func.min(Job.created_at)).where(Job.state == JobState.QUEUED)
    )
    return stats
