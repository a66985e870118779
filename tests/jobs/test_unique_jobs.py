"""Unique jobs: a second enqueue under a held key returns the job that holds it, and
writes nothing, however many race for the key."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.orm import Session

from app.core.db import transaction
from app.tasks.example_tasks import send_welcome_email
from durable_jobs import Job, JobState, wait_for_publishing
from durable_jobs._unique import UniqueKey
from tests.support.broker import queued_messages
from tests.support.settings import settings


def job_count() -> int:
    with transaction() as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def enqueue(key: str, unique_for: float | None = None, user_id: int = 1) -> str:
    with transaction() as session:
        task = send_welcome_email.options(unique_key=key, unique_for=unique_for)
        return str(task.enqueue(session, user_id=user_id).id)


def finish(job_id: str) -> None:
    with transaction() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(state=JobState.SUCCEEDED, finished_at=func.now())
        )


def test_a_second_enqueue_returns_the_unfinished_job_and_writes_nothing() -> None:
    first = enqueue("welcome:1")
    second = enqueue("welcome:1", user_id=2)
    wait_for_publishing(timeout=5)

    assert second == first
    assert job_count() == 1
    assert queued_messages() == 1
    # Another key, or the same key of another task, is another job.
    assert enqueue("welcome:2") != first


def test_the_key_is_free_again_once_its_job_finished() -> None:
    first = enqueue("welcome:1")
    finish(first)

    second = enqueue("welcome:1")

    assert second != first
    assert job_count() == 2


def test_a_key_held_for_a_period_outlives_its_job_and_not_the_period() -> None:
    first = enqueue("digest:1", unique_for=1.5)
    finish(first)
    assert enqueue("digest:1", unique_for=1.5) == first

    time.sleep(1.6)

    assert enqueue("digest:1", unique_for=1.5) != first
    assert job_count() == 2


def test_fifty_concurrent_enqueues_write_one_job() -> None:
    """Fifty transactions open at once (a pool of their own), each enqueueing under the
    key and holding its transaction open a moment, so the claims overlap."""
    racers = 50
    start = threading.Barrier(racers)
    database = create_engine(settings.database_url, pool_size=racers, max_overflow=0)

    def racer(_: int) -> str:
        with Session(database) as session, session.begin():
            session.execute(text("SELECT 1"))
            start.wait()
            job_id = str(
                send_welcome_email.options(unique_key="race:1").enqueue(session, user_id=1).id
            )
            time.sleep(0.1)
        return job_id

    try:
        with ThreadPoolExecutor(max_workers=racers) as pool:
            ids = set(pool.map(racer, range(racers)))
    finally:
        database.dispose()

    assert len(ids) == 1
    assert job_count() == 1
    with transaction() as session:
        holder = session.scalar(select(UniqueKey.job_id).where(UniqueKey.key == "race:1"))
    assert str(holder) in ids


def test_a_key_rolled_back_with_its_transaction_is_free() -> None:
    with pytest.raises(RuntimeError), transaction() as session:
        send_welcome_email.options(unique_key="welcome:1").enqueue(session, user_id=1)
        raise RuntimeError("the caller's transaction fails")

    enqueue("welcome:1")
    assert job_count() == 1


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"unique_key": "k" * 201}, "201 characters long; at most 200"),
        ({"unique_key": ""}, "must not be empty"),
        ({"unique_key": "k", "unique_for": 0}, "positive period"),
        ({"unique_for": 60}, "needs a unique_key"),
    ],
)
def test_a_key_that_cannot_work_is_an_error_that_writes_nothing(
    options: dict[str, object], error: str
) -> None:
    with pytest.raises(ValueError, match=error), transaction() as session:
        send_welcome_email.options(**options).enqueue(session, user_id=1)  # type: ignore[arg-type]

    assert job_count() == 0
