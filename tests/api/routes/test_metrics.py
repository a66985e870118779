"""GET /metrics: Prometheus text computed from the ledger and the broker, scraped for real."""

import time

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from durable_jobs import JobState
from durable_jobs._metrics import BUCKETS
from tests.support.broker import put_messages, unreachable_broker_url
from tests.support.broker_env import rabbitmq_only
from tests.support.factories import AppClientFactory
from tests.support.ledger_rows import insert_job
from tests.support.settings import settings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(body: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            labels = dict(sample.labels)
            if "le" in labels:
                labels["le"] = repr(float(labels["le"]))
            samples[(sample.name, frozenset(labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def bucket(samples: Samples, name: str, task: str, le: float) -> float:
    return value(samples, f"{name}_bucket", task=task, le=repr(float(le)))


@pytest.fixture
def ledger() -> None:
    """Jobs of two tasks in every interesting state, with known durations."""
    for _ in range(2):
        insert_job("t.a", JobState.QUEUED, created_ago=100)
    insert_job("t.a", JobState.QUEUED, created_ago=30, published=False)
    insert_job("t.a", JobState.STARTED, created_ago=50, wait=10, worker="w@h")
    # Succeeded on the first attempt: enqueue-to-start 0.02, 0.2, 3 s; runs 0.04, 1.5, 20 s.
    insert_job("t.a", JobState.SUCCEEDED, created_ago=600, wait=0.02, run=0.04)
    insert_job("t.a", JobState.SUCCEEDED, created_ago=600, wait=0.2, run=1.5)
    insert_job("t.a", JobState.SUCCEEDED, created_ago=600, wait=3, run=20)
    # Retried: its run counts, its start (the last attempt's) does not.
    insert_job("t.a", JobState.SUCCEEDED, created_ago=600, wait=40, run=0.5, attempts=2, retries=1)
    insert_job("t.a", JobState.RETRYING, created_ago=60, wait=1, run=None, attempts=1, retries=2)
    insert_job("t.b", JobState.FAILED, created_ago=600, wait=0.5, run=7, attempts=4, retries=3)
    insert_job("t.b", JobState.CANCELLED, created_ago=20, published=False)


def test_metrics_from_the_ledger_and_the_broker(client: TestClient, ledger: None) -> None:
    queue = settings.task_default_queue
    put_messages(3)
    put_messages(1, priority=6)

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    s = parse(response.text)
    assert value(s, "ledger_up") == 1 and value(s, "broker_up") == 1
    assert value(s, "broker_queue_depth", queue=queue) == 4
    assert value(s, "jobs", state=JobState.QUEUED, task="t.a") == 3
    assert value(s, "jobs", state=JobState.STARTED, task="t.a") == 1
    assert value(s, "jobs", state=JobState.SUCCEEDED, task="t.a") == 4
    assert value(s, "jobs", state=JobState.RETRYING, task="t.a") == 1
    assert value(s, "jobs", state=JobState.FAILED, task="t.a") == 0
    assert value(s, "jobs", state=JobState.FAILED, task="t.b") == 1
    assert value(s, "jobs", state=JobState.CANCELLED, task="t.b") == 1
    assert value(s, "jobs_failed") == 1
    assert value(s, "jobs_retries") == 1 + 2 + 3
    assert 100 <= value(s, "jobs_oldest_queued_age_seconds") < 160
    # The unpublished cancelled job is not waiting for the relay.
    assert value(s, "jobs_outbox_backlog") == 1
    assert 30 <= value(s, "jobs_outbox_oldest_age_seconds") < 90

    wait = "jobs_enqueue_to_start_seconds"
    assert value(s, f"{wait}_count", task="t.a") == 3
    assert value(s, f"{wait}_sum", task="t.a") == pytest.approx(3.22, abs=0.01)
    assert bucket(s, wait, "t.a", 0.01) == 0
    assert bucket(s, wait, "t.a", 0.025) == 1
    assert bucket(s, wait, "t.a", 0.25) == 2
    assert bucket(s, wait, "t.a", 2.5) == 2
    assert bucket(s, wait, "t.a", 5) == 3
    assert value(s, f"{wait}_bucket", task="t.a", le="inf") == 3
    run = "jobs_run_seconds"
    assert value(s, f"{run}_count", task="t.a") == 4
    assert value(s, f"{run}_sum", task="t.a") == pytest.approx(22.04, abs=0.01)
    assert [bucket(s, run, "t.a", b) for b in (0.025, 0.05, 0.5, 1, 2.5, 10, 30)] == [
        0,
        1,
        2,
        2,
        3,
        3,
        4,
    ]
    assert value(s, f"{run}_count", task="t.b") == 1
    assert bucket(s, run, "t.b", 5) == 0 and bucket(s, run, "t.b", 10) == 1
    assert value(s, f"{wait}_count", task="t.b") == 0
    assert len(BUCKETS) + 1 == sum(
        1 for name, labels in s if name == f"{run}_bucket" and ("task", "t.a") in labels
    )


def test_an_empty_ledger_reads_zero(client: TestClient) -> None:
    s = parse(client.get("/metrics").text)

    assert value(s, "jobs_outbox_backlog") == 0
    assert value(s, "jobs_oldest_queued_age_seconds") == 0
    assert value(s, "jobs_failed") == 0
    assert value(s, "broker_queue_depth", queue=settings.task_default_queue) == 0


@rabbitmq_only
def test_rabbitmq_dead_letters_have_their_own_depth(client: TestClient) -> None:
    s = parse(client.get("/metrics").text)

    assert value(s, "broker_queue_depth", queue=f"{settings.task_default_queue}.dead") == 0


def test_metrics_stay_out_of_the_openapi_schema(client: TestClient) -> None:
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_broker_down_reads_broker_up_0_and_keeps_the_ledger_metrics(
    app_client: AppClientFactory, ledger: None
) -> None:
    client = app_client(broker_url=unreachable_broker_url())
    started = time.monotonic()
    response = client.get("/metrics")
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed < 5
    s = parse(response.text)
    assert value(s, "broker_up") == 0
    assert not any(name == "broker_queue_depth" for name, _ in s)
    assert value(s, "ledger_up") == 1
    assert value(s, "jobs", state=JobState.QUEUED, task="t.a") == 3
