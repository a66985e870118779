"""examples/existing_app end to end, as its user would run it: its API and its worker as
real processes on a database of its own, a request, and the job succeeded in the ledger."""

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from tests.support.environment import DATABASE_SERVER, RUN_ID
from tests.support.runner import ROOT, Process, child_env, free_port, wait_until

from app.core.migrate import ensure_database_exists
from durable_jobs import JobState
from durable_jobs.testing import WorkerProcess, start_worker

EXAMPLE = ROOT / "examples" / "existing_app"
TOKEN = "example-admin-token"


@pytest.fixture
def example_env() -> Iterator[dict[str, str]]:
    database_url = f"{DATABASE_SERVER}/durable_jobs_example_{RUN_ID}"
    ensure_database_exists(database_url)
    yield child_env(
        {
            "PYTHONPATH": str(EXAMPLE),
            "DATABASE_URL": database_url,
            "TASK_DEFAULT_QUEUE": f"example-{RUN_ID}",
            "ADMIN_TOKEN": TOKEN,
        }
    )
    server = create_engine(f"{DATABASE_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        name = database_url.rsplit("/", 1)[1]
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.dispose()


@pytest.fixture
def example_api(example_env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "shop:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    api = Process("example-api", argv, example_env)
    base_url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base_url}/docs", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(answers, 30, what="the example API to answer")
        yield base_url
    finally:
        api.stop()


@pytest.fixture
def example_worker(example_api: str, example_env: dict[str, str]) -> Iterator[WorkerProcess]:
    worker = start_worker("shop.celery_app", name=f"example-{RUN_ID}", env=example_env)
    yield worker
    worker.stop()


def test_an_order_is_confirmed_by_a_durable_job(
    example_api: str, example_worker: WorkerProcess
) -> None:
    placed = httpx.post(f"{example_api}/orders", params={"item": "book"}, timeout=10)
    assert placed.status_code == 201
    job_url = f"{example_api}/jobs/{placed.json()['job_id']}"
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def succeeded() -> bool:
        return httpx.get(job_url, headers=headers, timeout=5).json()["state"] == JobState.SUCCEEDED

    wait_until(succeeded, 20, interval=0.2, what="the order's job to succeed")
    job = httpx.get(job_url, headers=headers, timeout=5).json()
    assert job["task_name"] == "orders.confirm"
    assert job["attempts"] == 1
    assert httpx.get(job_url, timeout=5).status_code == 403


def test_the_example_is_small() -> None:
    assert len(Path(EXAMPLE / "shop.py").read_text().splitlines()) < 80
