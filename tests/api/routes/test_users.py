"""POST/GET /api/v1/users: the answer, what lands in PostgreSQL, and the job it starts."""

import uuid

import httpx
from fastapi.testclient import TestClient

from durable_jobs import JobState
from tests.support.launchers import start_api
from tests.support.ledger import (
    job_row,
    new_user_payload,
    user_count,
    wait_for_job_state,
    welcomed_user_ids,
)
from tests.support.runner import Process, child_env, free_port, wait_until


def test_create_user_answers_201_and_the_welcome_email_runs_afterwards(
    client: TestClient, worker: Process
) -> None:
    response = client.post("/api/v1/users", json=new_user_payload())

    assert response.status_code == 201
    body = response.json()
    assert body["welcome_email_sent_at"] is None
    job = wait_for_job_state(body["welcome_email_job_id"], JobState.SUCCEEDED)
    assert job.attempts == 1
    assert job.kwargs == {"user_id": body["id"]}
    assert body["id"] in welcomed_user_ids()
    wait_until(lambda: f"Welcome email sent to {body['email']}" in worker.log(), 5)
    assert f"Task users.send_welcome_email[{job.id}] received" in worker.log()


def test_created_user_can_be_read_back(client: TestClient) -> None:
    created = client.post("/api/v1/users", json=new_user_payload()).json()

    response = client.get(f"/api/v1/users/{created['id']}")

    assert response.status_code == 200
    assert response.json()["email"] == created["email"]


def test_the_job_is_in_the_ledger_even_without_a_worker(client: TestClient) -> None:
    body = client.post("/api/v1/users", json=new_user_payload()).json()

    job = job_row(body["welcome_email_job_id"])
    assert job is not None
    assert job.state == JobState.QUEUED
    assert job.task_name == "users.send_welcome_email"


def test_duplicate_email_answers_409_whatever_its_case(client: TestClient) -> None:
    payload = new_user_payload()
    assert client.post("/api/v1/users", json=payload).status_code == 201

    again = {**payload, "email": payload["email"].upper()}
    response = client.post("/api/v1/users", json=again)

    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert user_count() == 1


BAD_BODIES = {
    "missing email": {"full_name": "Ann"},
    "invalid email": {"email": "not-an-email", "full_name": "Ann"},
    "email of wrong type": {"email": 42, "full_name": "Ann"},
    "name of wrong type": {"email": "ann@example.com", "full_name": ["Ann"]},
    "empty name": {"email": "ann@example.com", "full_name": "   "},
    "over-long name": {"email": "ann@example.com", "full_name": "x" * 201},
    "over-long email": {"email": f"{'a' * 64}@{'b' * 250}.com", "full_name": "Ann"},
    "unknown field": {"email": "ann@example.com", "full_name": "Ann", "admin": True},
    "NUL in name": {"email": "ann@example.com", "full_name": "A\x00nn"},
}


def test_bad_bodies_answer_422_and_create_nothing(client: TestClient) -> None:
    for case, body in BAD_BODIES.items():
        response = client.post("/api/v1/users", json=body)
        assert response.status_code == 422, case
        assert response.json()["detail"], case
    assert user_count() == 0


def test_malformed_json_answers_422(client: TestClient) -> None:
    response = client.post(
        "/api/v1/users",
        content=b'{"email": "a@example.com",',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 422
    assert "JSON" in str(response.json()["detail"])


def test_a_lone_surrogate_in_a_name_answers_422(client: TestClient) -> None:
    body = b'{"email": "ann@example.com", "full_name": "A\\ud800nn"}'

    response = client.post(
        "/api/v1/users", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert user_count() == 0


def test_a_body_that_is_not_an_object_answers_422(client: TestClient) -> None:
    for body in ([], "text", 3, None):
        assert client.post("/api/v1/users", json=body).status_code == 422


def test_oversized_body_answers_413(client: TestClient) -> None:
    huge = {"email": "a@example.com", "full_name": "x" * 100_000}

    response = client.post("/api/v1/users", json=huge)

    assert response.status_code == 413
    assert "exceeds" in response.json()["detail"]
    assert user_count() == 0


def test_oversized_chunked_body_answers_413(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(100):
            yield b"x" * 1024

    response = client.post(
        "/api/v1/users", content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 413


def test_unknown_user_answers_404(client: TestClient) -> None:
    response = client.get("/api/v1/users/999999")

    assert response.status_code == 404
    assert response.json() == {"detail": "No user with id 999999"}


def test_bad_user_ids_answer_422(client: TestClient) -> None:
    for bad_id in ("abc", "0", "-1", str(2**63), "1.5"):
        assert client.get(f"/api/v1/users/{bad_id}").status_code == 422, bad_id


def test_idempotency_key_replays_the_first_answer(client: TestClient) -> None:
    payload = new_user_payload()
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    first = client.post("/api/v1/users", json=payload, headers=headers)
    second = client.post("/api/v1/users", json=payload, headers=headers)

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert user_count() == 1


def test_idempotency_key_with_another_body_answers_422(client: TestClient) -> None:
    headers = {"Idempotency-Key": "key-1"}
    assert client.post("/api/v1/users", json=new_user_payload(), headers=headers).status_code == 201

    response = client.post("/api/v1/users", json=new_user_payload(), headers=headers)

    assert response.status_code == 422
    assert "different request body" in response.json()["detail"]
    assert user_count() == 1


def test_idempotency_key_of_a_failed_request_can_be_used_again(client: TestClient) -> None:
    taken = new_user_payload()
    client.post("/api/v1/users", json=taken)
    headers = {"Idempotency-Key": "key-2"}

    assert client.post("/api/v1/users", json=taken, headers=headers).status_code == 409
    retry = client.post("/api/v1/users", json=new_user_payload(), headers=headers)

    assert retry.status_code == 201


def test_over_long_idempotency_key_answers_422(client: TestClient) -> None:
    response = client.post(
        "/api/v1/users", json=new_user_payload(), headers={"Idempotency-Key": "k" * 256}
    )

    assert response.status_code == 422


def test_database_down_answers_503_not_500() -> None:
    dead_database = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none"
    api, base_url = start_api(child_env({"DATABASE_URL": dead_database}))
    try:
        response = httpx.post(f"{base_url}/api/v1/users", json=new_user_payload(), timeout=15)
    finally:
        api.stop()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "database is unavailable" in response.json()["detail"]
