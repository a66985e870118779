"""Fault tests that `make test` runs: real processes, real signals; each asserts nothing
is lost."""

import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from app.core.db import transaction
from app.models.user import User
from durable_jobs import Job, JobState
from durable_jobs import _ledger as ledger
from tests.faults.figures import report
from tests.faults.stack import Stack
from tests.support.fault_worker import kill_own_process
from tests.support.ledger import (
    job_row,
    jobs_by_state,
    new_user_payload,
    user_count,
    wait_for_job_state,
    welcomed_user_ids,
)
from tests.support.runner import wait_until
from tests.support.servers import PrivateBroker
from tests.support.settings import settings
from tests.support.stats import summarize

pytestmark = pytest.mark.slow

RESPONSE_BOUND = 0.5


def sent_count(stack: Stack, email: str) -> int:
    return stack.worker_logs().count(f"Welcome email sent to {email} ")


def test_broker_stopped_requests_still_succeed_and_jobs_run_once_it_is_back(
    stack: Stack, broker_server: PrivateBroker
) -> None:
    stack.start_worker()
    broker_server.stop()

    answers = [stack.create_user() for _ in range(20)]

    assert all(response.status_code == 201 for response, _ in answers)
    times = [elapsed for _, elapsed in answers]
    assert max(times) < RESPONSE_BOUND, summarize(times)
    broker_server.start()
    restarted = time.monotonic()
    job_ids = [response.json()["welcome_email_job_id"] for response, _ in answers]
    for job_id in job_ids:
        job = wait_for_job_state(job_id, JobState.SUCCEEDED, timeout=10)
        assert job.attempts == 1
    drained = time.monotonic() - restarted
    assert drained < 10
    for response, _ in answers:
        assert sent_count(stack, response.json()["email"]) == 1
    report("broker stopped", responses=summarize(times), drain_after_restart=f"{drained:.1f}s")


def test_broker_frozen_requests_still_succeed_and_nothing_hangs(
    stack: Stack, broker_server: PrivateBroker
) -> None:
    stack.start_worker()
    broker_server.freeze()
    try:
        answers = [stack.create_user() for _ in range(20)]
    finally:
        broker_server.thaw()

    times = [elapsed for _, elapsed in answers]
    assert all(response.status_code == 201 for response, _ in answers)
    assert max(times) < RESPONSE_BOUND, summarize(times)
    thawed = time.monotonic()
    for response, _ in answers:
        wait_for_job_state(response.json()["welcome_email_job_id"], JobState.SUCCEEDED, 30)
        assert sent_count(stack, response.json()["email"]) == 1
    report(
        "broker frozen",
        responses=summarize(times),
        drain_after_thaw=f"{time.monotonic() - thawed:.1f}s",
    )


CRASH_AFTER_COMMIT = """
import os, sys
from app.core.db import transaction
import app.worker  # builds the engine
from app.schemas.user import UserCreate
from app.services.users import create_user
from durable_jobs._runtime import current

current().publisher.submit = lambda messages: os._exit(17)
with transaction() as session:
    user, job = create_user(session, UserCreate(email=sys.argv[1], full_name="Crash"), welcome=True)
    print(job.id, flush=True)
"""


def test_process_killed_between_commit_and_publish_the_relay_publishes_later(
    stack: Stack,
) -> None:
    email = new_user_payload()["email"]
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_COMMIT, email],
        capture_output=True,
        text=True,
        env=stack.env,
        timeout=30,
    )
    assert crashed.returncode == 17, crashed.stderr
    job_id = crashed.stdout.strip()
    row = job_row(job_id)
    assert row is not None and row.published_at is None, "committed but never published"

    stack.start_worker()

    job = wait_for_job_state(job_id, JobState.SUCCEEDED, timeout=15)
    assert job.attempts == 1
    wait_until(lambda: sent_count(stack, email) == 1, 5)


def test_pool_process_killed_mid_task_the_job_is_rerun_and_succeeds(stack: Stack) -> None:
    stack.start_worker(email_send_seconds="3")
    response, _ = stack.create_user()
    job_id = response.json()["welcome_email_job_id"]
    running = wait_for_job_state(job_id, JobState.STARTED, timeout=10)
    assert running.worker_pid is not None

    os.kill(running.worker_pid, signal.SIGKILL)
    killed = time.monotonic()

    wait_until(lambda: (job_row(job_id) or running).attempts == 2, 15)
    redelivered = time.monotonic() - killed
    job = wait_for_job_state(job_id, JobState.SUCCEEDED, timeout=15)
    assert (job.attempts, job.worker_losses) == (2, 1)
    assert response.json()["id"] in welcomed_user_ids()
    assert sent_count(stack, response.json()["email"]) == 1
    report("pool process SIGKILL", time_to_redelivery=f"{redelivered:.2f}s")


def test_whole_worker_killed_mid_task_the_job_is_rerun_by_another(stack: Stack) -> None:
    first = stack.start_worker(email_send_seconds="3")
    response, _ = stack.create_user()
    job_id = response.json()["welcome_email_job_id"]
    wait_for_job_state(job_id, JobState.STARTED, timeout=10)

    first.kill_group()
    killed = time.monotonic()
    stack.start_worker()

    wait_until(lambda: (job_row(job_id) or Job()).attempts == 2, 40)
    redelivered = time.monotonic() - killed
    job = wait_for_job_state(job_id, JobState.SUCCEEDED, timeout=15)
    assert (job.attempts, job.worker_losses) == (2, 1)
    assert sent_count(stack, response.json()["email"]) == 1
    report("whole worker SIGKILL", time_to_redelivery=f"{redelivered:.1f}s")


def test_a_poison_job_that_kills_its_worker_ends_failed(stack: Stack) -> None:
    worker = stack.start_worker()
    with transaction() as session:  # left in the outbox for the stack's relay to publish
        job_id = ledger.add_job(session, settings, kill_own_process.policy, {}).id

    job = wait_for_job_state(job_id, JobState.FAILED, timeout=40)

    assert job.worker_losses == 3
    assert job.last_error == "worker lost 3 times while running it"
    assert worker.popen.poll() is None, "the worker itself survives"
    report("poison job", attempts=job.attempts, worker_losses=job.worker_losses)


def test_sigterm_during_a_task_lets_it_finish(stack: Stack) -> None:
    worker = stack.start_worker(email_send_seconds="3")
    response, _ = stack.create_user()
    job_id = response.json()["welcome_email_job_id"]
    wait_for_job_state(job_id, JobState.STARTED, timeout=10)

    worker.signal(signal.SIGTERM)

    assert worker.popen.wait(30) == 0
    job = wait_for_job_state(job_id, JobState.SUCCEEDED, timeout=1)
    assert job.attempts == 1
    assert "warm shutdown" in worker.log().lower()


def test_a_thousand_users_while_the_worker_is_killed_twice(stack: Stack) -> None:
    total = 1000
    stack.start_worker(email_send_seconds="0.01")
    ids: list[str] = []
    with ThreadPoolExecutor(8) as pool:
        for round_number in range(3):
            answers = list(pool.map(lambda _: stack.create_user()[0], range(total // 3 + 1)))
            ids += [a.json()["welcome_email_job_id"] for a in answers if a.status_code == 201]
            if round_number < 2:
                stack.workers[-1].kill_group()
                stack.start_worker(email_send_seconds="0.01")
    ids = ids[:total] if len(ids) > total else ids
    started = time.monotonic()

    wait_until(
        lambda: jobs_by_state().get(JobState.SUCCEEDED, 0) == user_count(),
        120,
        interval=0.5,
        what="every job to succeed",
    )

    with transaction() as session:
        attempts = session.scalar(select(func.sum(Job.attempts)))
        users = session.scalar(select(func.count(User.id)))
    assert users == user_count() >= total
    assert welcomed_user_ids() == set(range(1, users + 1))
    assert jobs_by_state() == {JobState.SUCCEEDED: users}
    sent_lines = stack.worker_logs().count("Welcome email sent to ")
    report(
        "1000 users, worker killed twice",
        users=users,
        jobs_succeeded=users,
        total_attempts=attempts,
        sent_log_lines=sent_lines,
        drain_after_last_restart=f"{time.monotonic() - started:.1f}s",
    )


def test_concurrent_requests_with_one_idempotency_key_make_one_user(stack: Stack) -> None:
    payload = new_user_payload()
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    users_before, jobs_before = user_count(), sum(jobs_by_state().values())

    def post(_: int) -> httpx.Response:
        return httpx.post(
            f"{stack.api_url}/api/v1/users", json=payload, headers=headers, timeout=30
        )

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, range(16)))

    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["welcome_email_job_id"] for a in answers}) == 1
    assert user_count() == users_before + 1
    assert sum(jobs_by_state().values()) == jobs_before + 1


def test_a_redelivered_message_of_a_succeeded_job_is_skipped(stack: Stack) -> None:
    worker = stack.start_worker()
    response, _ = stack.create_user()
    job_id = response.json()["welcome_email_job_id"]
    done = wait_for_job_state(job_id, JobState.SUCCEEDED)

    assert resend_to_stack_broker(stack, done)

    wait_until(lambda: f"Skipping job {job_id}" in worker.log(), 10)
    again = job_row(job_id)
    assert again is not None and again.attempts == 1 and again.finished_at == done.finished_at
    assert sent_count(stack, response.json()["email"]) == 1


def resend_to_stack_broker(stack: Stack, job: Job) -> bool:
    """Publish the job's message again, as a broker redelivery would hand it over."""
    code = (
        "import sys, uuid; from app.core.db import transaction; from durable_jobs import Job; "
        "from app.worker import celery_app; from durable_jobs._message import JobMessage; "
        "from durable_jobs._publisher import publish; "
        "session = transaction().__enter__(); "
        "job = session.get(Job, uuid.UUID(sys.argv[1])); "
        "sys.exit(0 if publish(celery_app, [JobMessage.of(job)]) else 1)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(job.id)], env=stack.env, timeout=30)
    return done.returncode == 0
