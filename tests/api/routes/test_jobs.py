"""/api/v1/jobs: the ledger seen and steered by an operator, behind the admin token."""

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.core.db import transaction
from durable_jobs import Job, JobState
from tests.support.environment import ADMIN_HEADERS
from tests.support.factories import WorkerFactory
from tests.support.ledger import new_user_payload, wait_for_job_state, welcomed_user_ids
from tests.support.runner import wait_until
from tests.support.settings import settings


def create_user(client: TestClient) -> dict[str, str]:
    response = client.post("/api/v1/users", json=new_user_payload())
    assert response.status_code == 201
    return response.json()  # type: ignore[no-any-return]


def set_state(job_id: str, state: JobState) -> None:
    with transaction() as session:
        session.execute(update(Job).where(Job.id == uuid.UUID(job_id)).values(state=state))


def test_missing_token_answers_401(client: TestClient) -> None:
    response = client.get("/api/v1/jobs")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_wrong_token_answers_403(client: TestClient) -> None:
    response = client.get("/api/v1/jobs", headers={"Authorization": "Bearer nope"})

    assert response.status_code == 403


def test_without_a_configured_token_the_jobs_api_is_off(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "admin_token", None)

    response = client.get("/api/v1/jobs", headers=ADMIN_HEADERS)

    assert response.status_code == 404
    assert "disabled" in response.json()["detail"]


def test_the_user_response_links_its_job(client: TestClient) -> None:
    user = create_user(client)

    response = client.get(f"/api/v1/jobs/{user['welcome_email_job_id']}", headers=ADMIN_HEADERS)

    assert response.status_code == 200
    job = response.json()
    assert job["task_name"] == "users.send_welcome_email"
    assert job["arguments"] == {"user_id": user["id"]}
    assert job["state"] == JobState.QUEUED
    assert job["max_attempts"] == 4


def test_unknown_job_answers_404(client: TestClient) -> None:
    response = client.get(f"/api/v1/jobs/{uuid.uuid4()}", headers=ADMIN_HEADERS)

    assert response.status_code == 404


def test_malformed_job_id_answers_422(client: TestClient) -> None:
    assert client.get("/api/v1/jobs/not-a-uuid", headers=ADMIN_HEADERS).status_code == 422


def test_list_is_newest_first_and_paginated(client: TestClient) -> None:
    created = [create_user(client)["welcome_email_job_id"] for _ in range(5)]

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/jobs", params=params, headers=ADMIN_HEADERS).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == list(reversed(created))


def test_list_filters_by_state_and_task(client: TestClient) -> None:
    first, second = (create_user(client)["welcome_email_job_id"] for _ in range(2))
    set_state(first, JobState.FAILED)

    failed = client.get(
        "/api/v1/jobs", params={"state": JobState.FAILED}, headers=ADMIN_HEADERS
    ).json()
    other_task = client.get("/api/v1/jobs", params={"task": "nope"}, headers=ADMIN_HEADERS).json()

    assert [item["id"] for item in failed["items"]] == [first]
    assert other_task["items"] == []


def test_bad_list_parameters_answer_4xx(client: TestClient) -> None:
    for params, code in (
        ({"state": "exploded"}, 422),
        ({"limit": 0}, 422),
        ({"limit": 1000}, 422),
        ({"task": "a\x00b"}, 422),
        ({"cursor": "%%%"}, 400),
        ({"cursor": "bm90IGEgY3Vyc29y"}, 400),
    ):
        response = client.get("/api/v1/jobs", params=params, headers=ADMIN_HEADERS)
        assert response.status_code == code, params


def test_a_malformed_cursor_answers_400_as_the_schema_says(client: TestClient) -> None:
    response = client.get("/api/v1/jobs", params={"cursor": "%%%"}, headers=ADMIN_HEADERS)
    documented = client.get("/openapi.json").json()["paths"]["/api/v1/jobs"]["get"]["responses"]

    assert response.status_code == 400
    assert "cursor is malformed" in response.json()["detail"]
    assert documented["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }


def test_only_failed_jobs_can_be_retried(client: TestClient) -> None:
    job_id = create_user(client)["welcome_email_job_id"]

    response = client.post(f"/api/v1/jobs/{job_id}/retry", headers=ADMIN_HEADERS)

    assert response.status_code == 409
    assert "queued" in response.json()["detail"]


def test_a_retried_job_runs_again_as_a_new_attempt(
    client: TestClient, worker_factory: WorkerFactory
) -> None:
    user = create_user(client)
    job_id = user["welcome_email_job_id"]
    failing_worker = worker_factory(email_simulated_failures="9", email_max_retries="0")
    wait_for_job_state(job_id, JobState.FAILED)
    failing_worker.stop()

    response = client.post(f"/api/v1/jobs/{job_id}/retry", headers=ADMIN_HEADERS)
    assert response.status_code == 202
    assert response.json()["state"] == JobState.QUEUED
    worker_factory(name="w2")

    job = wait_for_job_state(job_id, JobState.SUCCEEDED, timeout=30)
    assert job.attempts == 2
    assert user["id"] in welcomed_user_ids()


def test_a_cancelled_job_is_skipped_by_the_worker(
    client: TestClient, worker_factory: WorkerFactory
) -> None:
    user = create_user(client)
    job_id = user["welcome_email_job_id"]

    response = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=ADMIN_HEADERS)
    assert response.status_code == 200
    assert response.json()["state"] == JobState.CANCELLED
    worker = worker_factory()

    wait_until(lambda: f"Skipping job {job_id}" in worker.log(), 15)
    assert user["id"] not in welcomed_user_ids()
    again = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=ADMIN_HEADERS)
    assert again.status_code == 409
