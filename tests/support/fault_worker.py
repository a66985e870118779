"""The application's Celery app plus tasks that misbehave on purpose.

Test workers run `celery -A tests.support.fault_worker`; production code never sees these.
"""

import os
import signal

from app.tasks.catalog import TaskSpec
from app.worker import celery_app

__all__ = ["celery_app"]

KILL_OWN_PROCESS = TaskSpec("faults.kill_own_process", max_retries=0)


@celery_app.task(name=KILL_OWN_PROCESS.name)
def kill_own_process() -> None:
    """A poison job: every attempt kills the process that runs it."""
    os.kill(os.getpid(), signal.SIGKILL)
