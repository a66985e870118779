from dataclasses import dataclass
from typing import Any

from durable_jobs._models import Job


@dataclass(frozen=True)
class JobMessage:
    """What the broker needs to deliver one job; built from its ledger row."""

    job_id: str
    task_name: str
    kwargs: dict[str, Any]
    queue: str
    retries: int
    traceparent: str | None = None
    priority: int | None = None

    @classmethod
    def of(cls, job: Job) -> "JobMessage":
        return cls(
            str(job.id),
            job.task_name,
            job.kwargs,
            job.queue,
            job.retries,
            job.traceparent,
            job.priority,
        )
