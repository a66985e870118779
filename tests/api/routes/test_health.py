"""/api/v1/health*: liveness, readiness and the workers report, also with the broker gone."""

import time

import pytest
from fastapi.testclient import TestClient

from tests.support.broker import private_broker, unreachable_broker_url
from tests.support.factories import AppClientFactory, WorkerFactory
from tests.support.runner import Process, wait_until

WORKERS_DEADLINE = 2.0


def test_liveness(client: TestClient) -> None:
    assert client.get("/api/v1/health").json() == {"status": "ok"}


def test_ready_when_database_and_broker_answer(client: TestClient) -> None:
    response = client.get("/api/v1/health/ready")

    assert response.status_code == 200
    assert response.json()["database"]["ok"] and response.json()["broker"]["ok"]


def test_workers_lists_the_running_worker(client: TestClient, worker: Process) -> None:
    wait_until(lambda: client.get("/api/v1/health/workers").status_code == 200, 10)

    response = client.get("/api/v1/health/workers").json()

    assert response["status"] == "ok" and response["source"] == "heartbeats"
    [reported] = response["workers"]
    assert reported["name"].startswith("w1-")
    assert reported["state"] == "ok"
    assert reported["concurrency"] == 2
    assert reported["active_jobs"] == 0
    assert reported["broker_connected"] is True
    assert reported["last_heartbeat_age_seconds"] < 5


def test_workers_answers_503_when_no_worker_is_up(client: TestClient) -> None:
    started = time.monotonic()
    response = client.get("/api/v1/health/workers")

    assert time.monotonic() - started < WORKERS_DEADLINE
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "source": "heartbeats",
        "workers": [],
        "error": "no worker has sent a heartbeat",
    }


@pytest.fixture
def client_with_dead_broker(app_client: AppClientFactory) -> TestClient:
    return app_client(broker_url=unreachable_broker_url())


def test_workers_and_ready_answer_503_quickly_when_the_broker_is_unreachable(
    client_with_dead_broker: TestClient,
) -> None:
    for path in ("/api/v1/health/workers", "/api/v1/health/ready"):
        started = time.monotonic()
        response = client_with_dead_broker.get(path)
        elapsed = time.monotonic() - started

        assert response.status_code == 503, path
        assert elapsed < WORKERS_DEADLINE, (path, elapsed)
    assert "broker" in response.json()["broker"]["error"]


def test_workers_answers_quickly_without_asking_a_frozen_broker(
    worker_factory: WorkerFactory, app_client: AppClientFactory
) -> None:
    with private_broker() as broker:
        worker_factory(broker_url=broker.url)
        client = app_client(broker_url=broker.url)
        broker.freeze()
        started = time.monotonic()
        response = client.get("/api/v1/health/workers")
        elapsed = time.monotonic() - started
        broker.thaw()

    assert elapsed < WORKERS_DEADLINE
    [reported] = response.json()["workers"]
    assert reported["name"].startswith("w1-")
