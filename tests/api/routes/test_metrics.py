"""GET /metrics of the API (state at scrape time, HTTP requests, the process) and of a real
worker (events counted in its pool processes), scraped for real."""

import statistics
import sys
import time
import uuid

import httpx
import pytest
from bench.scrape import UNFINISHED_SHARE, fill_ledger
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from app.core.db import engine, transaction
from app.models.user import User
from app.tasks.example_tasks import send_welcome_email
from durable_jobs import JobState
from tests.support.broker import put_messages, unreachable_broker_url
from tests.support.broker_env import rabbitmq_only
from tests.support.factories import AppClientFactory, WorkerFactory
from tests.support.fault_worker import record, retry_in_half_a_second
from tests.support.ledger import wait_for_job_state
from tests.support.ledger_rows import insert_job
from tests.support.runner import free_port, wait_until
from tests.support.settings import settings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
PREFIX = "durable_jobs_"
# Names that keep their standard form: the process collector's, which every exporter shares.
STANDARD_PREFIXES = ("process_",)


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


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def assert_prefixed(samples: Samples) -> None:
    ours = {n for n in names(samples) if not n.startswith(STANDARD_PREFIXES)}
    assert ours and all(n.startswith(PREFIX) for n in ours), sorted(ours)


@pytest.fixture
def ledger() -> None:
    """Unfinished jobs of two tasks, and finished ones the scrape must not read."""
    for _ in range(2):
        insert_job("t.a", JobState.QUEUED, created_ago=100)
    insert_job("t.a", JobState.QUEUED, created_ago=30, published=False)
    insert_job("t.a", JobState.STARTED, created_ago=50, wait=10, worker="w@h")
    insert_job("t.a", JobState.RETRYING, created_ago=60, wait=1, run=None, attempts=1, retries=2)
    insert_job("t.a", JobState.SUCCEEDED, created_ago=600, wait=0.02, run=0.04)
    insert_job("t.b", JobState.FAILED, created_ago=600, wait=0.5, run=7, attempts=4, retries=3)
    insert_job("t.b", JobState.CANCELLED, created_ago=20, published=False)


def test_state_from_the_ledger_and_the_broker(client: TestClient, ledger: None) -> None:
    queue = settings.task_default_queue
    put_messages(3)
    put_messages(1, priority=6)

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    s = parse(response.text)
    assert_prefixed(s)
    assert value(s, "durable_jobs_ledger_up") == 1 and value(s, "durable_jobs_broker_up") == 1
    assert value(s, "durable_jobs_broker_queue_depth", queue=queue) == 4
    jobs = "durable_jobs_jobs"
    assert value(s, jobs, state="queued", task="t.a") == 3
    assert value(s, jobs, state="started", task="t.a") == 1
    assert value(s, jobs, state="retrying", task="t.a") == 1
    assert value(s, jobs, state="queued", task="users.send_welcome_email") == 0
    # Finished jobs are counted by the workers as they finish, never read from the ledger.
    assert not any(dict(labels).get("state") == "succeeded" for n, labels in s if n == jobs)
    assert 100 <= value(s, "durable_jobs_oldest_queued_age_seconds") < 160
    # The unpublished cancelled job is not waiting for the relay.
    assert value(s, "durable_jobs_outbox_backlog") == 1
    assert 30 <= value(s, "durable_jobs_outbox_oldest_age_seconds") < 90
    assert value(s, "durable_jobs_workers", state="ok") == 0


def test_an_empty_ledger_reads_zero(client: TestClient) -> None:
    s = parse(client.get("/metrics").text)

    assert value(s, "durable_jobs_outbox_backlog") == 0
    assert value(s, "durable_jobs_oldest_queued_age_seconds") == 0
    assert value(s, "durable_jobs_broker_queue_depth", queue=settings.task_default_queue) == 0
    for state in ("ok", "disconnected", "stuck", "lost"):
        assert value(s, "durable_jobs_workers", state=state) == 0


def test_http_requests_and_the_process_are_measured(client: TestClient) -> None:
    requests = "durable_jobs_http_requests_total"
    duration = "durable_jobs_http_request_duration_seconds_count"
    # The process's counters may hold earlier tests' requests: count the increase.
    before = parse(client.get("/metrics").text)
    for _ in range(3):
        assert client.get("/api/v1/health").status_code == 200
    client.get("/no/such/path")

    s = parse(client.get("/metrics").text)

    health = {"handler": "/api/v1/health", "method": "GET"}
    ok = {**health, "status": "2xx"}
    assert value(s, requests, **ok) - before.get((requests, frozenset(ok.items())), 0) == 3
    assert value(s, duration, **health) - before.get((duration, frozenset(health.items())), 0) == 3
    # Neither the scrapes nor paths that match no route become label values.
    counted = {
        dict(labels).get("handler")
        for (n, labels), count in s.items()
        if n == requests and count != before.get((n, labels), 0)
    }
    assert counted == {"/api/v1/health"}
    assert value(s, "process_cpu_seconds_total") > 0
    assert value(s, "process_resident_memory_bytes") > 0


@rabbitmq_only
def test_rabbitmq_dead_letters_have_their_own_depth(client: TestClient) -> None:
    s = parse(client.get("/metrics").text)

    dead = f"{settings.task_default_queue}.dead"
    assert value(s, "durable_jobs_broker_queue_depth", queue=dead) == 0


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
    assert value(s, "durable_jobs_broker_up") == 0
    assert "durable_jobs_broker_queue_depth" not in names(s)
    assert value(s, "durable_jobs_ledger_up") == 1
    assert value(s, "durable_jobs_jobs", state="queued", task="t.a") == 3


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200
    return parse(response.text)


def test_a_worker_counts_each_outcome_in_its_pool_processes(
    worker_factory: WorkerFactory,
    durable_relay: None,  # retries fall due in the ledger; the relay publishes them
) -> None:
    port = free_port()
    worker_factory(
        concurrency=2,
        worker_metrics_port=str(port),
        email_simulated_failures="9",
        email_max_retries="1",
        email_retry_backoff="1",
        email_retry_jitter="false",
    )
    url = f"http://127.0.0.1:{port}/metrics"
    welcome, flaky = "users.send_welcome_email", "faults.retry_in_half_a_second"
    # Every series of every declared task is there at 0 before the first job.
    before = scrape(url)
    assert value(before, "durable_jobs_jobs_finished_total", task=welcome, state="failed") == 0
    assert value(before, "durable_jobs_job_retries_total", task=flaky, reason="infrastructure") == 0
    assert value(before, "durable_jobs_job_enqueue_to_start_seconds_count", task=flaky) == 0
    with transaction() as session:
        user = User(email=f"{uuid.uuid4().hex[:8]}@example.com", full_name="Metrics")
        session.add(user)
        session.flush()
        failing = send_welcome_email.enqueue(session, user_id=user.id).id
        retried = retry_in_half_a_second.enqueue(session).id
        recorded = [record.enqueue(session, key=f"k{i}").id for i in range(3)]

    for job_id in (retried, *recorded):
        wait_for_job_state(job_id, JobState.SUCCEEDED)
    wait_for_job_state(failing, JobState.FAILED)

    finished = "durable_jobs_jobs_finished_total"
    # The outcome is written to the ledger before it is counted: wait for the last count.
    wait_until(
        lambda: (finished, frozenset({"task": welcome, "state": "failed"}.items())) in scrape(url),
        10,
        what="the failure to be counted",
    )
    s = scrape(url)
    assert_prefixed(s)
    assert value(s, finished, task="faults.record", state="succeeded") == 3
    assert value(s, finished, task=flaky, state="succeeded") == 1
    assert value(s, finished, task=welcome, state="failed") == 1
    retries = "durable_jobs_job_retries_total"
    assert value(s, retries, task=flaky, reason="error") == 1
    assert value(s, retries, task=welcome, reason="error") == 1
    attempts = "durable_jobs_job_attempts_total"
    assert value(s, attempts, task="faults.record") == 3
    assert value(s, attempts, task=flaky) == 2 and value(s, attempts, task=welcome) == 2
    # Enqueue to start: first attempts only; run time: every attempt that ended.
    wait = "durable_jobs_job_enqueue_to_start_seconds"
    assert value(s, f"{wait}_count", task="faults.record") == 3
    assert value(s, f"{wait}_count", task=flaky) == 1
    assert 0 < value(s, f"{wait}_sum", task="faults.record") < 3 * 20
    assert value(s, f"{wait}_bucket", task="faults.record", le="inf") == 3
    run = "durable_jobs_job_run_seconds"
    assert value(s, f"{run}_count", task=flaky) == 2
    assert value(s, f"{run}_count", task=welcome) == 2
    assert value(s, "process_cpu_seconds_total") > 0

    # Counters only go up: pruning the ledger does not lower them.
    with transaction() as session:
        session.execute(text("DELETE FROM jobs"))
    assert value(scrape(url), finished, task="faults.record", state="succeeded") == 3


LEDGER_ROWS = 1_000_000
SCRAPES = 20


def test_a_scrape_reads_no_more_of_a_million_row_ledger_than_its_unfinished_jobs(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """1,000,000 rows, 3% of them unfinished: the whole /metrics answer in under 100 ms."""
    with transaction() as session:
        fill_ledger(session, LEDGER_ROWS)
    # As autovacuum leaves a table after a bulk insert: visibility map set, statistics fresh.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE jobs"))
    client.get("/metrics")

    seconds = []
    for _ in range(SCRAPES):
        started = time.perf_counter()
        response = client.get("/metrics")
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200

    s = parse(response.text)
    unfinished = sum(v for (n, _), v in s.items() if n == "durable_jobs_jobs")
    assert unfinished == UNFINISHED_SHARE * LEDGER_ROWS
    median, worst = statistics.median(seconds), max(seconds)
    with capsys.disabled():
        sys.stdout.write(
            f"\n/metrics at {LEDGER_ROWS:,} ledger rows: median {median * 1000:.1f} ms,"
            f" max {worst * 1000:.1f} ms over {SCRAPES} scrapes\n"
        )
    assert median < 0.1, seconds
