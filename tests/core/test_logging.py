"""Log lines carry the ids that join a request to the jobs it enqueued."""

import json
import logging
import sys
import uuid

import httpx
from fastapi.testclient import TestClient

from app.core.logging import ContextFilter, JsonFormatter, job_id_var, request_id_var
from durable_jobs import JobState
from tests.support.ledger import job_row, new_user_payload, wait_for_job_state
from tests.support.runner import VENV_BIN, Process, child_env, free_port, wait_until


def format_json(message: str, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("app.test", logging.INFO, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    ContextFilter().filter(record)
    return json.loads(JsonFormatter().format(record))  # type: ignore[no-any-return]


def json_lines(process: Process) -> list[dict[str, object]]:
    """Every line the process wrote, each parsed as JSON: a line that is not fails."""
    lines = [line for line in process.log().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    return parsed


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
    assert str(line["time"]).endswith("+00:00")


def test_extra_fields_are_kept() -> None:
    line = format_json("published", batch=3, queue="default")

    assert (line["batch"], line["queue"]) == (3, "default")
    assert "context" not in line


def test_every_line_of_a_real_api_process_is_json_uvicorns_included() -> None:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]
    api = Process("api", argv, child_env({"LOG_FORMAT": "json"}))
    url = f"http://127.0.0.1:{port}/api/v1/health"
    try:
        wait_until(lambda: "Application startup complete" in api.log(), 30, what="the API")
        assert httpx.get(url, headers={"X-Request-ID": "json-logs"}, timeout=5).status_code == 200
        wait_until(lambda: "/api/v1/health" in api.log(), 10, what="the access line")
    finally:
        api.stop()

    lines = json_lines(api)
    [access] = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert (access["method"], access["path"], access["status_code"]) == (
        "GET",
        "/api/v1/health",
        200,
    )
    assert access["request_id"] == "json-logs"
    assert any("Uvicorn running on" in str(line["message"]) for line in lines)
    assert any("Finished server process" in str(line["message"]) for line in lines)


def test_every_line_of_a_real_worker_is_json_its_shutdown_included() -> None:
    name = f"json-{uuid.uuid4().hex[:6]}@%h"
    argv = [str(VENV_BIN / "celery"), "-A", "app.worker.celery_app", "--quiet", "worker"]
    argv += ["-l", "info", "-c", "1", "-n", name, "--without-mingle", "--without-gossip"]
    # Celery warns a root worker before logging is set up; the image runs as a user.
    quiet_as_root = "ignore:You're running the worker with superuser privileges"
    env = child_env({"LOG_FORMAT": "json", "PYTHONWARNINGS": quiet_as_root})
    worker = Process("worker-json", argv, env)
    try:
        wait_until(lambda: " ready." in worker.log(), 30, what="the worker")
    finally:
        worker.stop()

    messages = [str(line["message"]) for line in json_lines(worker)]
    assert any("Warm shutdown" in message for message in messages)


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
