"""The database or the broker going away is not a task's failure: which errors say so,
and what the ledger records when an attempt is cut short by one."""

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from kombu import Connection
from sqlalchemy import create_engine, exc, text

from app.core.db import engine, transaction
from durable_jobs import JobState, relay_pending_jobs
from durable_jobs import _ledger as ledger
from durable_jobs._infrastructure import is_infrastructure_error
from tests.support.factories import WorkerFactory
from tests.support.fault_worker import lose_connection
from tests.support.launchers import start_relay
from tests.support.ledger import wait_for_job_state
from tests.support.runner import Process, child_env, free_port
from tests.support.settings import settings


def raised(action: object) -> BaseException:
    assert callable(action)
    with pytest.raises(Exception) as caught:
        action()
    return caught.value


def test_a_terminated_connection_is_infrastructure() -> None:
    def terminate_own_backend() -> None:
        with transaction() as session:
            backend = session.scalar(text("SELECT pg_backend_pid()"))
            with engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
                other.commit()
            session.execute(text("SELECT 1"))

    error = raised(terminate_own_backend)
    assert isinstance(error, exc.OperationalError)
    assert is_infrastructure_error(error)


def test_a_refused_connection_is_infrastructure() -> None:
    port = free_port()
    assert is_infrastructure_error(
        raised(lambda: psycopg.connect(f"host=127.0.0.1 port={port} connect_timeout=2"))
    )
    unreachable = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/app")
    assert is_infrastructure_error(raised(unreachable.connect))


def test_an_unreachable_broker_is_infrastructure() -> None:
    broker = Connection(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=1)
    assert is_infrastructure_error(raised(lambda: broker.ensure_connection(max_retries=0)))


def test_a_task_bug_is_not_infrastructure() -> None:
    def insert_twice() -> None:
        with transaction() as session:
            for _ in range(2):
                session.execute(
                    text("INSERT INTO users (email, full_name) VALUES ('same@example.com', 'x')")
                )

    def time_out() -> None:
        with transaction() as session:
            session.execute(text("SET LOCAL statement_timeout = 10"))
            session.execute(text("SELECT pg_sleep(1)"))

    assert not is_infrastructure_error(raised(insert_twice))
    assert not is_infrastructure_error(raised(time_out))  # cancelled, not gone
    assert not is_infrastructure_error(ConnectionError("the task's own mail server"))
    assert not is_infrastructure_error(ValueError("a bug"))


def test_a_pooled_connection_the_server_closed_is_not_handed_out() -> None:
    with transaction() as session:
        first = session.scalar(text("SELECT pg_backend_pid()"))
    admin = create_engine(settings.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    admin.dispose()

    with transaction() as session:  # the first use after the restart does not fail
        second = session.scalar(text("SELECT pg_backend_pid()"))
    assert second != first


@pytest.fixture
def relay() -> Iterator[Process]:
    """The relay publishes the retries of attempts cut short, once they are due."""
    process = start_relay(child_env())
    yield process
    process.stop()


def enqueue_losing(times: int) -> uuid.UUID:
    with transaction() as session:
        return ledger.add_job(
            session, settings, lose_connection.policy, {"key": "k", "times": times}
        ).id


def test_an_attempt_that_loses_its_connection_runs_again(
    worker_factory: WorkerFactory, relay: Process
) -> None:
    worker_factory(job_infrastructure_backoff_seconds="0.1")
    job_id = enqueue_losing(times=1)
    relay_pending_jobs(min_age_seconds=0)

    job = wait_for_job_state(job_id, JobState.SUCCEEDED, timeout=20)

    assert (job.attempts, job.infra_retries, job.retries) == (2, 1, 0)
    assert job.last_error is not None and job.last_error.startswith("infrastructure error: ")


def test_infrastructure_errors_past_their_budget_fail_the_job(
    worker_factory: WorkerFactory, relay: Process
) -> None:
    worker_factory(job_infrastructure_backoff_seconds="0.1", job_infrastructure_retries="2")
    job_id = enqueue_losing(times=99)
    relay_pending_jobs(min_age_seconds=0)

    job = wait_for_job_state(job_id, JobState.FAILED, timeout=20)

    assert (job.attempts, job.infra_retries) == (3, 3)
    assert job.last_error is not None
    assert job.last_error.startswith("infrastructure error on 3 attempts in a row: ")
