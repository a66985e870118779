"""Cancelling running jobs through the ledger, with real workers: cooperatively at
report_progress, or by terminating the pool process after the grace period."""

import uuid

from fastapi.testclient import TestClient

from app.core.db import transaction
from durable_jobs import Job, JobState, cancel_job
from tests.support.environment import ADMIN_HEADERS
from tests.support.factories import WorkerFactory
from tests.support.ledger import job_row, wait_for_job_state
from tests.support.result_tasks import ignore_cancel, report_forever, swallow_cancel
from tests.support.runner import Process, wait_until


def cancel(client: TestClient, job_id: uuid.UUID) -> dict[str, object]:
    response = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=ADMIN_HEADERS)
    assert response.status_code == 202, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_running_job_stops_at_its_next_progress_report(
    client: TestClient, worker: Process
) -> None:
    with transaction() as session:
        job_id = report_forever.enqueue(session).id
    wait_for_job_state(job_id, JobState.STARTED)

    requested = cancel(client, job_id)
    again = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=ADMIN_HEADERS)

    assert requested["state"] == "started"
    assert requested["cancel_requested_at"] is not None
    assert again.status_code == 202
    assert again.json()["cancel_requested_at"] == requested["cancel_requested_at"]
    job = wait_for_job_state(job_id, JobState.CANCELLED, timeout=10)
    assert (job.attempts, job.result) == (1, None)
    assert f"Job {job_id} (results.report_forever) cancelled during attempt 1" in worker.log()
    finished = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=ADMIN_HEADERS)
    assert finished.status_code == 409
    assert "it is cancelled" in finished.json()["detail"]


def test_a_job_that_never_reports_is_terminated_after_the_grace_period(
    worker_factory: WorkerFactory,
) -> None:
    worker = worker_factory(job_cancel_grace_seconds="1")
    with transaction() as session:
        job_id = ignore_cancel.enqueue(session, seconds=6).id
    wait_for_job_state(job_id, JobState.STARTED)

    with transaction() as session:
        cancel_job(session, job_id)

    job = wait_for_job_state(job_id, JobState.CANCELLED, timeout=5)
    assert job.last_error == "cancelled: its process was terminated 1s after the request"
    wait_until(lambda: "terminating pool process" in worker.log(), 5)
    # The redelivered message (the process died holding it) is skipped, never run again.
    wait_until(lambda: f"Skipping job {job_id}" in worker.log(), 15)
    row = job_row(job_id)
    assert row is not None
    assert (row.state, row.attempts, row.result) == (JobState.CANCELLED, 1, None)


def test_a_task_that_swallows_the_cancel_is_still_recorded_cancelled(
    client: TestClient, worker: Process
) -> None:
    with transaction() as session:
        job_id = swallow_cancel.enqueue(session).id
    wait_for_job_state(job_id, JobState.STARTED)

    cancel(client, job_id)

    job = wait_for_job_state(job_id, JobState.CANCELLED, timeout=10)
    assert job.result is None
    wait_until(lambda: "after a cancel request: recorded as cancelled" in worker.log(), 5)


def test_a_cancel_asked_while_no_worker_runs_it_ends_the_job_at_the_next_delivery(
    client: TestClient, worker_factory: WorkerFactory
) -> None:
    """A started job whose worker died: the request waits in the ledger, and the next
    claim (after the lease, or on the same node) records it cancelled instead of running."""
    with transaction() as session:
        job_id = report_forever.enqueue(session).id
    first = worker_factory()
    wait_for_job_state(job_id, JobState.STARTED)
    first.kill_group()

    cancel(client, job_id)
    worker_factory(name="w1")

    job = wait_for_job_state(job_id, JobState.CANCELLED, timeout=40)
    assert job.attempts == 1
    with transaction() as session:
        assert session.get(Job, job_id).state == JobState.CANCELLED  # type: ignore[union-attr]
