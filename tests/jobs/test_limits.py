"""Global limits per task, held across several real workers, counted in PostgreSQL."""

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from app.core.db import engine, transaction
from durable_jobs import JobState, cancel_job, task
from durable_jobs._limits import parse_rate
from tests.support.factories import WorkerFactory
from tests.support.launchers import start_relay
from tests.support.ledger import wait_for_job_state
from tests.support.limited_tasks import (
    CONCURRENCY,
    RATE_COUNT,
    RATE_PERIOD_SECONDS,
    at_most_three,
    one_at_a_time,
    three_per_two_seconds,
)
from tests.support.runner import Process, child_env


@pytest.fixture
def relay() -> Iterator[Process]:
    """Held jobs wait in the outbox: the relay publishes those that come due."""
    process = start_relay(child_env())
    yield process
    process.stop()


def started_jobs(task_name: str) -> int:
    with engine.connect() as connection:
        return int(
            connection.scalar(
                text("SELECT count(*) FROM jobs WHERE task_name = :t AND state = 'started'"),
                {"t": task_name},
            )
        )


def start_times(key: str) -> list[float]:
    with engine.connect() as connection:
        rows = connection.scalars(
            text(
                "SELECT EXTRACT(EPOCH FROM started_at)::float8 FROM executions"
                " WHERE key = :key ORDER BY started_at"
            ),
            {"key": key},
        )
        return list(rows)


@pytest.mark.slow
def test_concurrency_holds_at_every_instant_across_three_workers(
    relay: Process,
    worker_factory: WorkerFactory,
) -> None:
    for n in range(3):
        worker_factory(f"limit{n}", concurrency=2)  # six processes for three slots
    with transaction() as session:
        job_ids = [at_most_three.enqueue(session, key="c", seconds=0.4).id for _ in range(15)]

    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(started_jobs(at_most_three.name))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        for job_id in job_ids:
            wait_for_job_state(job_id, JobState.SUCCEEDED, timeout=90)
    finally:
        done.set()
        sampler.join()

    assert len(samples) > 100
    assert max(samples) == CONCURRENCY  # reached, never passed
    assert len(start_times("c")) == 15  # each job ran once: held jobs were never started


@pytest.mark.slow
def test_a_rate_is_held_in_every_window(relay: Process, worker_factory: WorkerFactory) -> None:
    worker_factory("rate", concurrency=3)
    with transaction() as session:
        job_ids = [three_per_two_seconds.enqueue(session, key="r").id for _ in range(9)]

    for job_id in job_ids:
        wait_for_job_state(job_id, JobState.SUCCEEDED, timeout=60)

    starts = start_times("r")
    assert len(starts) == 9
    for i in range(len(starts) - RATE_COUNT):
        # Any RATE_COUNT + 1 consecutive starts span more than the period.
        assert starts[i + RATE_COUNT] - starts[i] >= RATE_PERIOD_SECONDS - 0.01


@pytest.mark.slow
def test_a_killed_jobs_slot_comes_back_with_its_recovery(
    relay: Process, worker_factory: WorkerFactory
) -> None:
    worker_factory("kill", concurrency=2)
    with transaction() as session:
        killed = one_at_a_time.enqueue(session, key="k", kill_first=True).id
    wait_for_job_state(killed, JobState.STARTED, timeout=20)
    with transaction() as session:
        waiting = one_at_a_time.enqueue(session, key="w").id

    # The killed job is taken over (its own slot), then the waiting job gets the slot.
    wait_for_job_state(killed, JobState.SUCCEEDED, timeout=60)
    wait_for_job_state(waiting, JobState.SUCCEEDED, timeout=60)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT key, started_at FROM executions ORDER BY started_at")
        ).all()
    assert [key for key, _ in rows] == ["k", "k", "w"]


def test_a_held_job_waits_in_the_outbox_and_can_be_cancelled(
    relay: Process,
    worker_factory: WorkerFactory,
) -> None:
    worker_factory("hold", concurrency=2)
    with transaction() as session:
        running = one_at_a_time.enqueue(session, key="long", seconds=6.0).id
    wait_for_job_state(running, JobState.STARTED, timeout=20)
    with transaction() as session:
        held = one_at_a_time.enqueue(session, key="held").id

    def is_held() -> bool:
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT state, limit_hold, published_at FROM jobs WHERE id = :id"),
                {"id": held},
            ).one()
        return tuple(row) == ("queued", "concurrency", None)

    deadline = time.monotonic() + 10
    while not is_held():
        assert time.monotonic() < deadline, "the job was not held"
        time.sleep(0.05)
    with transaction() as session:
        cancel_job(session, held)
    wait_for_job_state(running, JobState.SUCCEEDED, timeout=20)
    time.sleep(1)
    assert start_times("held") == []


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        ({"rate": "0/m"}, "cannot work"),
        ({"rate": "10/0s"}, "cannot work"),
        ({"rate": "100/minute"}, "malformed"),
        ({"rate": "fast"}, "malformed"),
        ({"rate": "20000/s"}, "over 10000"),
        ({"concurrency": 0}, "cannot work"),
        ({"concurrency": -1}, "cannot work"),
        ({"concurrency": True}, "cannot work"),
    ],
)
def test_a_limit_that_cannot_work_is_refused_at_declaration(
    limits: dict[str, object], reason: str
) -> None:
    name = f"limits.refused_{uuid.uuid4().hex[:8]}"
    with pytest.raises(ValueError, match=reason) as refused:
        task(name, **limits)  # type: ignore[arg-type]
    assert name in str(refused.value)


def test_rates_are_read_in_their_units() -> None:
    assert parse_rate("100/m").period == timedelta(minutes=1)
    assert parse_rate("5/s").count == 5
    assert parse_rate("10/30s").period == timedelta(seconds=30)
    assert parse_rate(" 1000 / h ").period == timedelta(hours=1)
