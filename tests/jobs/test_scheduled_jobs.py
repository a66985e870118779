"""Scheduled jobs and retries wait in the ledger, never in the broker, and the relay
publishes each when it falls due."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from app.core.db import transaction
from app.tasks.example_tasks import send_welcome_email
from durable_jobs import Job, JobState, relay_pending_jobs, wait_for_publishing
from tests.support.broker import queued_messages
from tests.support.fault_worker import record, retry_later
from tests.support.ledger import job_row, wait_for_job_state
from tests.support.runner import Process, wait_until


def test_a_scheduled_job_waits_in_the_ledger_until_it_is_due() -> None:
    with transaction() as session:
        job_id = send_welcome_email.options(countdown=1.5).enqueue(session, user_id=1).id
    wait_for_publishing(timeout=5)

    row = job_row(job_id)
    assert row is not None and row.state == JobState.SCHEDULED
    assert row.published_at is None and row.next_attempt_at is not None
    assert relay_pending_jobs(min_age_seconds=0) == 0
    assert queued_messages() == 0

    wait_until(lambda: relay_pending_jobs(min_age_seconds=0) == 1, 5, what="the job to fall due")
    published = job_row(job_id)
    assert published is not None and published.state == JobState.QUEUED
    assert published.published_at is not None
    assert published.published_at >= published.next_attempt_at  # type: ignore[operator]
    assert queued_messages() == 1


def test_run_at_in_the_past_runs_now() -> None:
    with transaction() as session:
        earlier = datetime.now(UTC) - timedelta(hours=1)
        job_id = send_welcome_email.options(run_at=earlier).enqueue(session, user_id=1).id
    wait_for_publishing(timeout=5)

    row = job_row(job_id)
    assert row is not None and row.state == JobState.QUEUED and row.next_attempt_at is None
    assert queued_messages() == 1  # published at once, after the commit


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"run_at": datetime.now() + timedelta(hours=1)}, "timezone-aware"),  # noqa: DTZ005
        ({"run_at": datetime.now(UTC), "countdown": 1.0}, "not both"),
        ({"countdown": float("nan")}, "finite"),
    ],
)
def test_a_time_that_cannot_be_read_is_an_error_that_writes_nothing(
    options: dict[str, object], error: str
) -> None:
    with pytest.raises(ValueError, match=error), transaction() as session:
        send_welcome_email.options(**options).enqueue(session, user_id=1)  # type: ignore[arg-type]

    with transaction() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_a_scheduled_job_runs_at_its_time(worker: Process, durable_relay: None) -> None:
    run_at = datetime.now(UTC) + timedelta(seconds=2)
    with transaction() as session:
        job_id = record.options(run_at=run_at).enqueue(session, key="scheduled").id

    job = wait_for_job_state(job_id, JobState.SUCCEEDED, timeout=20)

    assert job.started_at is not None and job.started_at >= run_at
    assert job.attempts == 1


def test_a_retry_an_hour_out_waits_in_the_ledger_not_in_the_broker(
    worker: Process, durable_relay: None
) -> None:
    with transaction() as session:
        job_id = retry_later.enqueue(session, seconds=3600).id

    job = wait_for_job_state(job_id, JobState.RETRYING, timeout=15)
    assert job.published_at is None and job.retries == 1
    assert job.next_attempt_at is not None
    assert job.next_attempt_at > datetime.now(UTC) + timedelta(minutes=59)
    wait_until(lambda: "retry 1 of 1 in 3600.0s" in worker.log(), 5, what="the retry log line")
    assert queued_messages() == 0  # nothing parked in the broker (no delay queue on RabbitMQ)

    # The hour passes: the relay publishes the retry and the worker runs it.
    with transaction() as session:
        session.execute(update(Job).where(Job.id == job_id).values(next_attempt_at=func.now()))
    finished = wait_for_job_state(job_id, JobState.SUCCEEDED, timeout=15)
    assert (finished.attempts, finished.retries) == (2, 1)
