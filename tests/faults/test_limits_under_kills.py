"""A global concurrency limit holds while workers are killed (T22): the jobs of a dead
worker keep their slots until the lease takeover runs them again, so the number of
running jobs of the task never passes its limit, and every job runs to its effect."""

import threading
import time

import pytest
from sqlalchemy import text

from app.core.db import engine, transaction
from durable_jobs import JobState
from tests.faults.checker import History, Outcome, check
from tests.faults.figures import add_row
from tests.support.factories import WorkerFactory
from tests.support.launchers import start_relay
from tests.support.ledger import wait_for_job_state
from tests.support.limited_tasks import CONCURRENCY, at_most_three
from tests.support.runner import child_env

pytestmark = [pytest.mark.faults, pytest.mark.slow]

JOBS = 30


def started_jobs() -> int:
    with engine.connect() as connection:
        return int(
            connection.scalar(
                text("SELECT count(*) FROM jobs WHERE task_name = :t AND state = :s"),
                {"t": at_most_three.name, "s": JobState.STARTED.value},
            )
        )


def test_t22_a_concurrency_limit_holds_while_workers_are_killed(
    worker_factory: WorkerFactory,
) -> None:
    relay = start_relay(child_env())
    workers = [worker_factory(f"t22-{n}", concurrency=2) for n in range(3)]
    history = History()
    with transaction() as session:
        job_ids = []
        for n in range(JOBS):
            key = f"t22-{n}"
            job_ids.append(at_most_three.enqueue(session, key=key, seconds=0.5).id)
            history.add(key, Outcome.OK, time.monotonic(), 0.0)

    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(started_jobs())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        time.sleep(2)
        workers[0].kill_group()  # a whole worker, mid-job
        time.sleep(3)
        workers[1].kill_group()
        worker_factory("t22-replacement", concurrency=2)
        for job_id in job_ids:
            wait_for_job_state(job_id, JobState.SUCCEEDED, timeout=120)
    finally:
        done.set()
        sampler.join()
        relay.stop()

    verdict = check(engine, history)
    verdict.assert_safe()
    assert len(samples) > 100
    assert max(samples) <= CONCURRENCY, f"the limit was passed: {max(samples)} running"
    add_row(
        f"T22 concurrency limit {CONCURRENCY}, 2 of 3 workers SIGKILLed",
        verdict,
        notes=f"{len(samples)} samples of running jobs, max {max(samples)}; every job succeeded",
    )
