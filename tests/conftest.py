"""Test set-up: a database and a Redis key prefix of this run's own, real workers.

The environment is set before the application is imported, so every process the
tests start (workers, relays, API servers) inherits the same isolated settings.
"""

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

RUN_ID = uuid.uuid4().hex[:10]
DATABASE_SERVER = os.environ.get(
    "TEST_DATABASE_SERVER", "postgresql+psycopg://postgres@127.0.0.1:5432"
)
os.environ.update(
    APP_ENV_FILE="",
    ENVIRONMENT="test",
    LOG_LEVEL="INFO",
    DATABASE_URL=f"{DATABASE_SERVER}/durable_jobs_test_{RUN_ID}",
    BROKER_URL=os.environ.get("TEST_BROKER_URL", "redis://127.0.0.1:6379/0"),
    BROKER_BROADCAST_PREFIX=f"test-{RUN_ID}",
    TASK_DEFAULT_QUEUE=f"test-{RUN_ID}",
    ADMIN_TOKEN="test-admin-token",
    EMAIL_SEND_SECONDS="0.05",
    TASK_TIME_LIMIT="10",
    TASK_SOFT_TIME_LIMIT="8",
    JOB_LEASE_GRACE_SECONDS="2",
    RELAY_INTERVAL_SECONDS="0.2",
    RELAY_MIN_AGE_SECONDS="0.5",
    JOB_REPUBLISH_AFTER_SECONDS="30",
)

import redis  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from app.core.config import settings  # noqa: E402
from app.core.db import engine  # noqa: E402
from app.core.migrate import ensure_database_exists, upgrade_to_head  # noqa: E402
from app.jobs.publisher import background_publisher  # noqa: E402
from app.main import app  # noqa: E402
from tests.support.effects import create_tables  # noqa: E402
from tests.support.processes import Process, child_env, start_worker  # noqa: E402

ADMIN_HEADERS = {"Authorization": "Bearer test-admin-token"}
WorkerFactory = Callable[..., Process]


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
    background_publisher.wait_idle(timeout=10)
    with engine.begin() as connection:
        connection.execute(
            text("TRUNCATE users, jobs, idempotency_keys, executions, effects RESTART IDENTITY")
        )
    purge_broker()


def purge_broker() -> None:
    """Drop this run's queued messages (its queue name is its own)."""
    client = redis.Redis.from_url(settings.broker_url)
    for key in client.scan_iter(match=f"{settings.task_default_queue}*"):
        client.delete(key)
    client.close()


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


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
def worker(worker_factory: WorkerFactory) -> Process:
    return worker_factory()
