"""Tasks under global limits or at a priority, for the limits and priorities tests;
test workers load them through `tests.support.fault_worker`."""

import os
import signal
import time
import uuid

from sqlalchemy import text

from app.core.db import autocommit
from durable_jobs import task
from tests.support.effects import record_effect, record_execution

CONCURRENCY = 3
RATE_COUNT = 3
RATE_PERIOD_SECONDS = 2.0


@task("limits.at_most_three", concurrency=CONCURRENCY)
def at_most_three(key: str, seconds: float) -> None:
    _record_and_work(at_most_three.request.id, key, seconds)


@task("limits.three_per_two_seconds", rate=f"{RATE_COUNT}/{RATE_PERIOD_SECONDS:g}s")
def three_per_two_seconds(key: str) -> None:
    _record_and_work(three_per_two_seconds.request.id, key, 0.0)


@task("limits.one_at_a_time", concurrency=1)
def one_at_a_time(key: str, kill_first: bool = False, seconds: float = 0.0) -> None:
    """With `kill_first`, the first attempt kills the process that runs it."""
    job_id = uuid.UUID(one_at_a_time.request.id)
    with autocommit() as connection:
        earlier = connection.scalar(
            text("SELECT count(*) FROM executions WHERE job_id = :id"), {"id": job_id}
        )
    if kill_first and earlier == 0:
        with autocommit() as connection:
            record_execution(connection, job_id, key)
        os.kill(os.getpid(), signal.SIGKILL)
    _record_and_work(one_at_a_time.request.id, key, seconds)


@task("priorities.bulk", priority=9)
def bulk(key: str) -> None:
    """Waits behind jobs of smaller priority numbers."""
    _record_and_work(bulk.request.id, key, 0.0)


def _record_and_work(task_id: str | None, key: str, seconds: float) -> None:
    assert task_id is not None
    job_id = uuid.UUID(task_id)
    with autocommit() as connection:
        record_execution(connection, job_id, key)
    time.sleep(seconds)
    with autocommit() as connection:
        record_effect(connection, job_id, key)
