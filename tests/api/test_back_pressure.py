"""Back-pressure on the enqueueing endpoints, in process, on the real Redis and PostgreSQL:
429 past a client's burst, 503 while the backlog is at SHED_QUEUE_DEPTH, nothing created
for either, and enqueueing still open when the limiter's Redis is gone."""

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from app.api.back_pressure import LoadShedder, get_load_shedder, get_rate_limiter
from app.core.db import transaction
from app.core.rate_limit import RateLimiter
from app.main import app
from app.services.backlog import BacklogGauge
from durable_jobs import Job, JobState
from tests.support.broker_env import REDIS_URL
from tests.support.environment import ADMIN_HEADERS
from tests.support.ledger import new_user_payload, user_count
from tests.support.ledger_rows import insert_job
from tests.support.runner import free_port

ClientFactory = Callable[[str], TestClient]
GAUGE_MAX_AGE_SECONDS = 0.2


@pytest.fixture
def client_at() -> Iterator[ClientFactory]:
    """Test clients, each from the address of the caller's choosing."""
    opened: list[TestClient] = []

    def open_client(address: str) -> TestClient:
        test_client = TestClient(app, client=(address, 50000))
        opened.append(test_client)
        return test_client

    yield open_client
    for test_client in opened:
        test_client.close()


def use_rate_limiter(limiter: RateLimiter) -> Iterator[RateLimiter]:
    app.dependency_overrides[get_rate_limiter] = lambda: limiter
    yield limiter
    del app.dependency_overrides[get_rate_limiter]
    limiter.close()


@pytest.fixture
def rate_limit(key_prefix: str) -> Iterator[RateLimiter]:
    """Three requests at once, then one every ten seconds."""
    yield from use_rate_limiter(
        RateLimiter(REDIS_URL, per_second=0.1, burst=3, key_prefix=key_prefix)
    )


@pytest.fixture
def unreachable_rate_limit() -> Iterator[RateLimiter]:
    yield from use_rate_limiter(
        RateLimiter(f"redis://127.0.0.1:{free_port()}/0", per_second=0.1, burst=1)
    )


@pytest.fixture
def shed_at_three() -> Iterator[LoadShedder]:
    shedder = LoadShedder(3, BacklogGauge(max_age_seconds=GAUGE_MAX_AGE_SECONDS))
    app.dependency_overrides[get_load_shedder] = lambda: shedder
    yield shedder
    del app.dependency_overrides[get_load_shedder]


def job_count() -> int:
    with transaction() as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def test_a_burst_gets_429_with_retry_after_once_the_bucket_is_empty(
    rate_limit: RateLimiter, client_at: ClientFactory
) -> None:
    burst_client = client_at("192.0.2.1")

    statuses = []
    refused = []
    for _ in range(6):
        response = burst_client.post("/api/v1/users", json=new_user_payload())
        statuses.append(response.status_code)
        if response.status_code == 429:
            refused.append(response)

    assert statuses == [201, 201, 201, 429, 429, 429]
    for response in refused:
        assert int(response.headers["Retry-After"]) >= 1
        assert "Rate limit" in response.json()["detail"]
    assert user_count() == 3
    assert job_count() == 3


def test_another_client_keeps_its_own_allowance(
    rate_limit: RateLimiter, client_at: ClientFactory
) -> None:
    burst_client, other_client = client_at("192.0.2.1"), client_at("192.0.2.2")
    for _ in range(4):
        burst_client.post("/api/v1/users", json=new_user_payload())

    statuses = [
        other_client.post("/api/v1/users", json=new_user_payload()).status_code for _ in range(3)
    ]

    assert statuses == [201, 201, 201]


def test_reads_are_not_rate_limited(rate_limit: RateLimiter, client_at: ClientFactory) -> None:
    burst_client = client_at("192.0.2.1")
    created = [burst_client.post("/api/v1/users", json=new_user_payload()) for _ in range(4)]
    assert created[-1].status_code == 429

    user_id = created[0].json()["id"]
    assert burst_client.get(f"/api/v1/users/{user_id}").status_code == 200
    assert burst_client.get("/api/v1/health").status_code == 200


def test_job_retries_draw_on_the_same_allowance(
    rate_limit: RateLimiter, client_at: ClientFactory
) -> None:
    operator = client_at("192.0.2.3")
    failed = [str(insert_job("users.send_welcome_email", JobState.FAILED)) for _ in range(4)]

    statuses = [
        operator.post(f"/api/v1/jobs/{job_id}/retry", headers=ADMIN_HEADERS).status_code
        for job_id in failed
    ]

    assert statuses == [202, 202, 202, 429]
    with transaction() as session:
        last = session.get(Job, uuid.UUID(failed[-1]))
        assert last is not None and last.state == JobState.FAILED


def test_enqueueing_goes_on_when_the_limiters_redis_is_unreachable(
    unreachable_rate_limit: RateLimiter, client_at: ClientFactory
) -> None:
    burst_client = client_at("192.0.2.1")

    statuses = [
        burst_client.post("/api/v1/users", json=new_user_payload()).status_code for _ in range(5)
    ]

    assert statuses == [201] * 5
    assert job_count() == 5


def test_at_the_shed_depth_enqueueing_answers_503_and_creates_nothing(
    shed_at_three: LoadShedder, client_at: ClientFactory
) -> None:
    api = client_at("192.0.2.1")
    existing = api.post("/api/v1/users", json=new_user_payload())
    assert existing.status_code == 201  # no worker: its job stays queued
    insert_job("users.send_welcome_email", JobState.QUEUED)
    insert_job("users.send_welcome_email", JobState.RETRYING, published=False)
    time.sleep(GAUGE_MAX_AGE_SECONDS)

    response = api.post("/api/v1/users", json=new_user_payload())

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert "Too many jobs are waiting" in response.json()["detail"]
    assert user_count() == 1
    assert job_count() == 3


def test_jobs_let_in_count_before_the_next_backlog_read(
    shed_at_three: LoadShedder, client_at: ClientFactory
) -> None:
    api = client_at("192.0.2.1")

    statuses = [api.post("/api/v1/users", json=new_user_payload()).status_code for _ in range(4)]

    assert statuses == [201, 201, 201, 503]


def test_reads_and_health_are_served_while_shedding(
    shed_at_three: LoadShedder, client_at: ClientFactory
) -> None:
    api = client_at("192.0.2.1")
    user_id = api.post("/api/v1/users", json=new_user_payload()).json()["id"]
    for _ in range(2):
        insert_job("users.send_welcome_email", JobState.QUEUED)
    time.sleep(GAUGE_MAX_AGE_SECONDS)
    assert api.post("/api/v1/users", json=new_user_payload()).status_code == 503

    assert api.get(f"/api/v1/users/{user_id}").status_code == 200
    assert api.get("/api/v1/health").status_code == 200
    assert api.get("/api/v1/jobs", headers=ADMIN_HEADERS).status_code == 200


def test_enqueueing_reopens_once_the_backlog_drains(
    shed_at_three: LoadShedder, client_at: ClientFactory
) -> None:
    api = client_at("192.0.2.1")
    for _ in range(3):
        insert_job("users.send_welcome_email", JobState.QUEUED)
    assert api.post("/api/v1/users", json=new_user_payload()).status_code == 503

    with transaction() as session:
        session.execute(update(Job).values(state=JobState.SUCCEEDED))
    time.sleep(GAUGE_MAX_AGE_SECONDS)

    assert api.post("/api/v1/users", json=new_user_payload()).status_code == 201
