"""Test set-up: a database and a broker namespace of this run's own, real workers.

The environment is set before the application is imported, so every process the
tests start (workers, relays, API servers) inherits the same isolated settings.
"""

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.broker_env import ON_RABBITMQ, REDIS_URL, create_vhost, delete_vhost
from tests.support.environment import (
    DATABASE_SERVER,
    RABBITMQ_VHOST,
    RUN_ID,
    TEST_ENVIRONMENT,
)

# The engine's fixtures: a real worker process, wait_for_job, ledger assertions.
pytest_plugins = ["durable_jobs.testing"]

if ON_RABBITMQ:
    create_vhost(RABBITMQ_VHOST)
os.environ.update(TEST_ENVIRONMENT)

import redis  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from app.core.db import engine  # noqa: E402
from app.core.migrate import ensure_database_exists, upgrade_to_head  # noqa: E402
from app.main import app, create_app  # noqa: E402
from durable_jobs import discard_celery, wait_for_publishing  # noqa: E402
from tests.support.broker import purge_broker  # noqa: E402
from tests.support.effects import create_tables  # noqa: E402
from tests.support.factories import AppClientFactory, WorkerFactory  # noqa: E402
from tests.support.launchers import start_worker  # noqa: E402
from tests.support.runner import Process, child_env  # noqa: E402
from tests.support.settings import settings  # noqa: E402


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The run's vhost goes with it, even when collection failed."""
    if ON_RABBITMQ:
        delete_vhost(RABBITMQ_VHOST)


@pytest.fixture(scope="session", autouse=True)
def database() -> Iterator[None]:
    ensure_database_exists(settings.database_url)
    upgrade_to_head()
    with engine.begin() as connection:
        create_tables(connection)  # the test workers' record of what they ran
    yield
    engine.dispose()
    database_name = settings.database_url.rsplit("/", 1)[1]
    server = create_engine(f"{DATABASE_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)'))
    server.dispose()


@pytest.fixture(autouse=True)
def clean_state(database: None) -> Iterator[None]:
    yield
    wait_for_publishing(timeout=10)
    with engine.begin() as connection:
        connection.execute(
            text(
                "TRUNCATE users, jobs, job_unique_keys, job_schedules, job_schedule_ticks,"
                " idempotency_keys, worker_heartbeats, executions, effects"
                " RESTART IDENTITY"
            )
        )
    purge_broker()


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def app_client() -> Iterator[AppClientFactory]:
    """Clients of apps built in this process with other settings: `app_client(broker_url=...)`.

    Each app's engine is discarded after the test, so the run's own is current again.
    """
    opened: list[tuple[TestClient, FastAPI]] = []

    def build(**changes: Any) -> TestClient:
        built = create_app(settings.model_copy(update=changes))
        test_client = TestClient(built)
        test_client.__enter__()
        opened.append((test_client, built))
        return test_client

    yield build
    for test_client, built in opened:
        test_client.__exit__(None, None, None)
        discard_celery(built.state.celery_app)


@pytest.fixture
def worker_factory() -> Iterator[WorkerFactory]:
    """Start real Celery workers with settings of the test's choosing; all stop after it."""
    started: list[Process] = []

    def start(name: str = "w1", concurrency: int = 2, **settings_env: str) -> Process:
        env = child_env({key.upper(): value for key, value in settings_env.items()})
        process = start_worker(f"{name}-{RUN_ID}", env, concurrency)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def durable_celery_app() -> str:
    """The service's own Celery app, as a user's tests would run it."""
    return "app.worker.celery_app"


@pytest.fixture
def worker(worker_factory: WorkerFactory) -> Process:
    return worker_factory()


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """Rate-limit keys of the test's own in the rate limiter's Redis, removed after it."""
    prefix = f"test-{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()
