"""A job whose task no worker knows ends failed in the ledger, not queued forever."""

from app.core.db import transaction
from app.jobs.enqueue import enqueue
from app.models.job import JobState
from app.tasks.catalog import TaskSpec
from tests.support.ledger import wait_for_job_state
from tests.support.processes import Process

UNKNOWN = TaskSpec("nobody.knows_this_task", max_retries=0)


def test_a_job_of_an_unknown_task_is_marked_failed(worker: Process) -> None:
    with transaction() as session:
        job_id = enqueue(session, UNKNOWN, answer=42).id

    job = wait_for_job_state(job_id, JobState.FAILED, timeout=15)

    assert job.last_error == "no worker knows the task 'nobody.knows_this_task'"
    assert "Received unregistered task of type 'nobody.knows_this_task'" in worker.log()
