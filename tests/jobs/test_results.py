"""A task's result and progress, kept in the ledger by a real worker and read back."""

import re
import uuid

import pytest
from fastapi.testclient import TestClient

from app.core.db import transaction
from durable_jobs import JobState, report_progress
from tests.support.environment import ADMIN_HEADERS
from tests.support.factories import WorkerFactory
from tests.support.ledger import wait_for_job_state
from tests.support.result_tasks import count_to, return_set, return_text
from tests.support.runner import Process, wait_until
from tests.support.settings import settings


def test_the_result_and_the_last_progress_are_kept(client: TestClient, worker: Process) -> None:
    with transaction() as session:
        job_id = count_to.enqueue(session, steps=5, seconds_per_step=0.05).id

    job = wait_for_job_state(job_id, JobState.SUCCEEDED)
    shown = client.get(f"/api/v1/jobs/{job_id}", headers=ADMIN_HEADERS).json()

    assert job.result == {"counted": 5}
    assert shown["result"] == {"counted": 5}
    assert shown["progress"]["done"] == shown["progress"]["total"] == 5
    assert shown["progress"]["note"] == "step 5"
    assert shown["cancel_requested_at"] is None


def test_progress_is_visible_while_the_job_runs(client: TestClient, worker: Process) -> None:
    with transaction() as session:
        job_id = count_to.enqueue(session, steps=40, seconds_per_step=0.1).id

    wait_for_job_state(job_id, JobState.STARTED)
    running = wait_for_progress(client, job_id)

    assert running["state"] == "started"
    assert 0 < running["progress"]["done"] < 40
    assert running["result"] is None
    wait_for_job_state(job_id, JobState.SUCCEEDED)


def test_a_result_over_the_limit_fails_the_job_once_saying_why(
    worker_factory: WorkerFactory,
) -> None:
    worker_factory(job_result_max_bytes="100")
    with transaction() as session:
        big = return_text.enqueue(session, size=99).id
        fits = return_text.enqueue(session, size=98).id

    failed = wait_for_job_state(big, JobState.FAILED)
    kept = wait_for_job_state(fits, JobState.SUCCEEDED)

    assert failed.last_error is not None
    assert "101 bytes of JSON, over JOB_RESULT_MAX_BYTES (100)" in failed.last_error
    assert (failed.result, failed.attempts) == (None, 1)
    assert kept.result == "x" * 98


def test_a_result_that_is_not_json_fails_the_job_saying_why(worker: Process) -> None:
    with transaction() as session:
        job_id = return_set.enqueue(session).id

    failed = wait_for_job_state(job_id, JobState.FAILED)

    assert failed.last_error is not None
    assert "the return value is not JSON" in failed.last_error


@pytest.mark.parametrize(
    ("done", "total", "note", "message"),
    [
        (-1, None, None, "done must be an integer"),
        (3, 2, None, "done (3) is above total (2)"),
        (1, 2, "x" * 201, "at most 200 characters"),
        (1, 2, "a\x00b", "NUL"),
        (True, None, None, "done must be an integer"),
        (1, 2**31, None, "total must be an integer"),
    ],
)
def test_bad_progress_is_a_clear_error(
    done: int, total: int | None, note: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        report_progress(done, total, note)


def test_outside_a_job_report_progress_does_nothing() -> None:
    report_progress(1, 2, "called directly, as a test of the task would")

    assert count_to(3) == {"counted": 3}


def test_the_result_limit_defaults_to_64_kib() -> None:
    assert settings.job_result_max_bytes == 65536


def wait_for_progress(client: TestClient, job_id: uuid.UUID) -> dict[str, object]:
    seen: dict[str, object] = {}

    def has_progress() -> bool:
        seen.update(client.get(f"/api/v1/jobs/{job_id}", headers=ADMIN_HEADERS).json())
        return seen.get("progress") is not None

    wait_until(has_progress, 10, what="progress to show")
    return seen
