"""The application's Celery app plus tasks that misbehave on purpose.

Test workers run `celery -A tests.support.fault_worker`; production code never sees these.
"""

import os
import signal

from celery import Task

from app.tasks.catalog import TaskSpec
from app.worker import celery_app

__all__ = ["celery_app"]

KILL_OWN_PROCESS = TaskSpec("faults.kill_own_process", max_retries=0)


@celery_app.task(name=KILL_OWN_PROCESS.name)
def kill_own_process() -> None:
    """A poison job: every attempt kills the process that runs it."""
    os.kill(os.getpid(), signal.SIGKILL)


RETRY_IN_HALF_A_SECOND = TaskSpec("faults.retry_in_half_a_second", max_retries=1)


@celery_app.task(name=RETRY_IN_HALF_A_SECOND.name, bind=True)
def retry_in_half_a_second(self: Task) -> None:  # type: ignore[type-arg]
    """Fails its first attempt and asks to run again after a sub-second countdown."""
    if self.request.retries == 0:
        raise self.retry(exc=ConnectionError("first attempt"), countdown=0.5)
