"""DurableTask's retries, through a real worker and the relay that publishes them when due."""

from app.core.db import transaction
from durable_jobs import JobState
from tests.support.fault_worker import retry_in_half_a_second
from tests.support.ledger import wait_for_job_state
from tests.support.runner import Process


def test_a_retry_after_less_than_a_second_runs_again(worker: Process, durable_relay: None) -> None:
    with transaction() as session:
        job_id = retry_in_half_a_second.enqueue(session).id

    job = wait_for_job_state(job_id, JobState.SUCCEEDED, timeout=15)

    assert (job.attempts, job.retries) == (2, 1)
