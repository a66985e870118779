"""A job whose task no worker knows ends failed in the ledger, not queued forever."""

from app.core.db import transaction
from durable_jobs import JobState, TaskPolicy
from durable_jobs._enqueue import add_and_publish_after_commit
from tests.support.ledger import wait_for_job_state
from tests.support.runner import Process

UNKNOWN = TaskPolicy("nobody.knows_this_task")


def test_a_job_of_an_unknown_task_is_marked_failed(worker: Process) -> None:
    with transaction() as session:
        job_id = add_and_publish_after_commit(session, UNKNOWN, {"answer": 42}).id

    job = wait_for_job_state(job_id, JobState.FAILED, timeout=15)

    assert job.last_error == "no worker knows the task 'nobody.knows_this_task'"
    assert "Received unregistered task of type 'nobody.knows_this_task'" in worker.log()
