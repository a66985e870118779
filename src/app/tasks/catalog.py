"""Every task's name and delivery policy, importable without Celery.

The API enqueues by these names; the worker registers its tasks under them.
"""

from dataclasses import dataclass

from app.core.config import settings


@dataclass(frozen=True)
class TaskSpec:
    name: str
    max_retries: int
    queue: str = settings.task_default_queue

    @property
    def max_attempts(self) -> int:
        return self.max_retries + 1


SEND_WELCOME_EMAIL = TaskSpec("users.send_welcome_email", max_retries=settings.email_max_retries)
PRUNE_FINISHED_JOBS = TaskSpec("jobs.prune_finished", max_retries=0)
REAP_ABANDONED_JOBS = TaskSpec("jobs.reap_abandoned", max_retries=0)
