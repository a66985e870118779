"""The application's Celery app plus tasks that misbehave on purpose.

Test workers run `celery -A tests.support.fault_worker`; production code never sees
these. The welcome email task is wrapped to write the `executions` and `effects`
rows the fault checker reads, and a few FAULT_* variables switch on the unsafe
settings that the controls of the fault suite need (each would be refused or is
never set in production).
"""

import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import text

from app.core.db import autocommit, transaction
from app.tasks.example_tasks import send_welcome_email
from app.worker import celery_app
from durable_jobs import task
from tests.support import (
    limited_tasks,  # noqa: F401  (the limits tests' tasks)
    result_tasks,  # noqa: F401  (its tasks, for the test workers)
)
from tests.support.effects import record_effect, record_execution

__all__ = ["celery_app"]


@task("faults.kill_own_process")
def kill_own_process() -> None:
    """A poison job: every attempt kills the process that runs it."""
    os.kill(os.getpid(), signal.SIGKILL)


@task("faults.retry_in_half_a_second", retries=1)
def retry_in_half_a_second() -> None:
    """Fails its first attempt and asks to run again after a sub-second countdown."""
    if retry_in_half_a_second.request.retries == 0:
        raise retry_in_half_a_second.celery_task.retry(
            exc=ConnectionError("first attempt"), countdown=0.5
        )


@task("faults.retry_later", retries=1)
def retry_later(seconds: float) -> None:
    """Fails its first attempt and asks to run again `seconds` later."""
    if retry_later.request.retries == 0:
        raise retry_later.celery_task.retry(exc=ConnectionError("first attempt"), countdown=seconds)


@task("faults.record")
def record(
    key: str, seconds: float = 0.0, ignore_soft_limit: bool = False, linger: float = 0.0
) -> None:
    """Record the execution, work for `seconds`, record the job's one effect, then wait
    `linger` seconds before the outcome is written."""
    job_id = uuid.UUID(record.request.id)
    with autocommit() as connection:
        record_execution(connection, job_id, key)
    sleep_through(seconds, ignore_soft_limit)
    with autocommit() as connection:
        record_effect(connection, job_id, key)
    time.sleep(linger)


@task("faults.lose_connection")
def lose_connection(key: str, times: int) -> None:
    """The first `times` attempts lose their database connection mid-transaction (the
    server terminates the backend, as a restart does); the next records the effect."""
    job_id = uuid.UUID(lose_connection.request.id)
    with autocommit() as connection:
        record_execution(connection, job_id, key)
        executions = connection.scalar(
            text("SELECT count(*) FROM executions WHERE job_id = :id"), {"id": job_id}
        )
    with transaction() as session:
        backend = session.scalar(text("SELECT pg_backend_pid()"))
        if executions <= times:
            with autocommit() as connection:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        record_effect(session.connection(), job_id, key)


def sleep_through(seconds: float, ignore_soft_limit: bool) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            time.sleep(left)
        except SoftTimeLimitExceeded:
            if not ignore_soft_limit:
                raise


def _recorded_welcome(run: Callable[..., str]) -> Callable[..., str]:
    def run_and_record(user_id: int) -> str:
        if send_welcome_email.request.id is None:  # called directly, not by a worker
            return run(user_id)
        job_id = uuid.UUID(send_welcome_email.request.id)
        with autocommit() as connection:
            email = connection.scalar(
                text("SELECT email FROM users WHERE id = :id"), {"id": user_id}
            )
            record_execution(connection, job_id, str(email))
        outcome = run(user_id)
        if outcome in ("sent", "already sent"):
            with autocommit() as connection:
                record_effect(connection, job_id, str(email), again=outcome == "sent")
        return outcome

    return run_and_record


def _apply_unsafe_overrides() -> None:
    visibility = os.environ.get("FAULT_VISIBILITY_TIMEOUT")
    if visibility:  # below twice the hard limit: Settings refuses this
        options: dict[str, Any] = dict(celery_app.conf.broker_transport_options)
        options["visibility_timeout"] = int(visibility)
        celery_app.conf.broker_transport_options = options
        celery_app.conf.visibility_timeout = int(visibility)
    reject = os.environ.get("FAULT_REJECT_ON_WORKER_LOST")
    if reject:
        celery_app.conf.task_reject_on_worker_lost = reject == "true"
    soft_shutdown = os.environ.get("FAULT_SOFT_SHUTDOWN_TIMEOUT")
    if soft_shutdown:
        celery_app.conf.worker_soft_shutdown_timeout = float(soft_shutdown)


# Before anything evaluates a task: a task copies these settings when it is bound, and
# the next line binds the welcome email.
_apply_unsafe_overrides()
welcome = send_welcome_email.celery_task
welcome.run = _recorded_welcome(welcome.run)  # type: ignore[method-assign]
