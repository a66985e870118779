"""Log lines carry the ids that join a request to the jobs it enqueued."""

import json
import logging

from fastapi.testclient import TestClient

from app.core.logging import ContextFilter, JsonFormatter, job_id_var, request_id_var
from durable_jobs import JobState
from tests.support.ledger import job_row, new_user_payload, wait_for_job_state
from tests.support.processes import Process


def format_json(message: str) -> dict[str, object]:
    record = logging.LogRecord("app.test", logging.INFO, __file__, 1, message, None, None)
    ContextFilter().filter(record)
    return json.loads(JsonFormatter().format(record))  # type: ignore[no-any-return]


def test_json_lines_carry_the_job_and_request_ids() -> None:
    job_token, request_token = job_id_var.set("job-1"), request_id_var.set("req-1")
    try:
        line = format_json("hello")
    finally:
        job_id_var.reset(job_token)
        request_id_var.reset(request_token)

    assert line["message"] == "hello"
    assert (line["job_id"], line["request_id"]) == ("job-1", "req-1")
    assert line["level"] == "INFO" and line["logger"] == "app.test"


def test_lines_outside_a_job_have_no_ids() -> None:
    line = format_json("idle")

    assert "job_id" not in line and "request_id" not in line


def test_the_request_id_is_echoed_and_stored_with_the_job(client: TestClient) -> None:
    response = client.post(
        "/api/v1/users", json=new_user_payload(), headers={"X-Request-ID": "trace-123"}
    )

    assert response.headers["X-Request-ID"] == "trace-123"
    job = job_row(response.json()["welcome_email_job_id"])
    assert job is not None and job.request_id == "trace-123"


def test_an_unusable_request_id_is_replaced(client: TestClient) -> None:
    response = client.get("/api/v1/health", headers={"X-Request-ID": "bad id with spaces"})

    assert len(response.headers["X-Request-ID"]) == 32


def test_worker_lines_of_a_job_carry_its_ids(client: TestClient, worker: Process) -> None:
    response = client.post(
        "/api/v1/users", json=new_user_payload(), headers={"X-Request-ID": "trace-456"}
    )
    job_id = response.json()["welcome_email_job_id"]

    wait_for_job_state(job_id, JobState.SUCCEEDED)

    job_lines = [line for line in worker.log().splitlines() if "Sending welcome email" in line]
    assert job_lines
    assert all(f"job_id={job_id} request_id=trace-456" in line for line in job_lines)
