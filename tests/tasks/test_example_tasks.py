"""send_welcome_email: called directly, and run by a real worker through its retries."""

import re
from datetime import datetime

from fastapi.testclient import TestClient

from app.core.db import transaction
from app.models.user import User
from app.tasks.example_tasks import send_welcome_email
from durable_jobs import JobState
from tests.support.factories import WorkerFactory
from tests.support.ledger import new_user_payload, wait_for_job_state, welcomed_user_ids


def make_user() -> int:
    with transaction() as session:
        user = User(**new_user_payload())
        session.add(user)
        session.flush()
        return user.id


def test_sends_once_even_when_run_twice() -> None:
    user_id = make_user()

    assert send_welcome_email(user_id=user_id) == "sent"
    assert send_welcome_email(user_id=user_id) == "already sent"
    assert welcomed_user_ids() == {user_id}


def test_a_deleted_user_gets_no_email() -> None:
    assert send_welcome_email(user_id=123456) == "user gone"


def test_transient_failures_are_retried_until_the_send_succeeds(
    client: TestClient, worker_factory: WorkerFactory, durable_relay: None
) -> None:
    worker = worker_factory(email_simulated_failures="2", email_retry_backoff="1")
    body = client.post("/api/v1/users", json=new_user_payload()).json()

    job = wait_for_job_state(body["welcome_email_job_id"], JobState.SUCCEEDED, timeout=30)

    assert job.attempts == 3
    assert job.retries == 2
    assert body["id"] in welcomed_user_ids()
    assert "retry 1 of 3" in worker.log() and "retry 2 of 3" in worker.log()


def test_retries_follow_the_policy_then_the_job_fails_cleanly(
    client: TestClient, worker_factory: WorkerFactory, durable_relay: None
) -> None:
    worker = worker_factory(
        email_simulated_failures="9", email_retry_backoff="1", email_retry_jitter="false"
    )
    body = client.post("/api/v1/users", json=new_user_payload()).json()
    job_id = body["welcome_email_job_id"]

    job = wait_for_job_state(job_id, JobState.FAILED, timeout=30)

    log = worker.log()
    assert job.attempts == 4
    assert job.retries == 3
    assert job.last_error is not None and "simulated mail server outage" in job.last_error
    for retry, delay in ((1, 1.0), (2, 2.0), (3, 4.0)):
        assert f"retry {retry} of 3 in {delay:.1f}s" in log
    assert f"Job {job_id} (users.send_welcome_email) failed on attempt 4" in log
    assert "retry 4 of 3" not in log
    starts = attempt_start_times(log, job_id)
    gaps = [
        (later - earlier).total_seconds()
        for earlier, later in zip(starts, starts[1:], strict=False)
    ]
    assert len(starts) == 4
    assert all(gap >= delay - 0.1 for gap, delay in zip(gaps, (1.0, 2.0, 4.0), strict=True)), gaps
    assert body["id"] not in welcomed_user_ids()


def attempt_start_times(log: str, job_id: str) -> list[datetime]:
    pattern = re.compile(rf"^(\S+ \S+) INFO .*Job {job_id} \S+ attempt \d+ started", re.M)
    return [datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f") for stamp in pattern.findall(log)]
