"""A cancelled running job never reports success, though its worker is killed and the
broker restarted while it stops: the cancel request lives in the ledger."""

import uuid

import pytest
from sqlalchemy import select

from app.core.db import transaction
from durable_jobs import Job, JobState, cancel_job
from durable_jobs import _ledger as ledger
from tests.faults.stack import Stack
from tests.support.ledger import wait_for_job_state
from tests.support.result_tasks import ignore_cancel, swallow_cancel
from tests.support.servers import PrivateBroker
from tests.support.settings import settings

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def enqueue_running_jobs() -> list[uuid.UUID]:
    """One job that would pretend to succeed after the cancel, one that never looks;
    committed to the outbox, for the stack's relay to publish on its private broker."""
    with transaction() as session:
        job_ids = [
            ledger.add_job(session, settings, swallow_cancel.policy, {}).id,
            ledger.add_job(session, settings, ignore_cancel.policy, {"seconds": 4}).id,
        ]
    for job_id in job_ids:
        wait_for_job_state(job_id, JobState.STARTED, timeout=30)
    return job_ids


def request_cancels(job_ids: list[uuid.UUID]) -> None:
    for job_id in job_ids:
        with transaction() as session:
            cancel_job(session, job_id)


def final_states(job_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, object]]:
    with transaction() as session:
        rows = session.execute(select(Job.id, Job.state, Job.result).where(Job.id.in_(job_ids)))
        return {row.id: (row.state, row.result) for row in rows}


def test_cancel_then_the_worker_is_killed_and_restarted(stack: Stack) -> None:
    worker = stack.start_worker(concurrency=2, job_cancel_grace_seconds="1")
    job_ids = enqueue_running_jobs()

    request_cancels(job_ids)
    worker.kill_group()  # before either job could stop or be stopped
    stack.start_worker(concurrency=2, job_cancel_grace_seconds="1")

    for job_id in job_ids:
        wait_for_job_state(job_id, JobState.CANCELLED, timeout=60)
    assert final_states(job_ids) == {job_id: (JobState.CANCELLED, None) for job_id in job_ids}
    assert_never_succeeded(stack, job_ids)


def test_cancel_then_the_broker_and_the_worker_restart(
    stack: Stack, broker_server: PrivateBroker
) -> None:
    worker = stack.start_worker(concurrency=2, job_cancel_grace_seconds="1")
    job_ids = enqueue_running_jobs()

    broker_server.stop()
    request_cancels(job_ids)
    worker.kill_group()
    broker_server.start()
    stack.start_worker(concurrency=2, job_cancel_grace_seconds="1")

    for job_id in job_ids:
        wait_for_job_state(job_id, JobState.CANCELLED, timeout=60)
    assert final_states(job_ids) == {job_id: (JobState.CANCELLED, None) for job_id in job_ids}
    assert_never_succeeded(stack, job_ids)


def assert_never_succeeded(stack: Stack, job_ids: list[uuid.UUID]) -> None:
    logs = stack.worker_logs()
    for job_id in job_ids:
        assert f"Job {job_id} " in logs
        assert "succeeded on attempt" not in "".join(
            line for line in logs.splitlines() if f"Job {job_id} " in line
        )
