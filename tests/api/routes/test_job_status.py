"""The caller's status URL: one job's state, progress and result, with no admin token;
anything else answers the same 404."""

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from app.core.db import transaction
from durable_jobs import Job, JobState
from tests.support.ledger import new_user_payload, wait_for_job_state
from tests.support.runner import Process
from tests.support.settings import settings

NOT_FOUND = {"detail": "No such job status"}


def create_user(client: TestClient) -> dict[str, str]:
    response = client.post("/api/v1/users", json=new_user_payload())
    assert response.status_code == 201
    return response.json()  # type: ignore[no-any-return]


def split(status_url: str) -> tuple[str, str, str]:
    """The URL's path, job id and token."""
    parts = urlsplit(status_url)
    return parts.path, parts.path.rsplit("/", 1)[1], parse_qs(parts.query)["token"][0]


def test_the_201_carries_a_status_url_that_shows_the_job_and_nothing_else(
    client: TestClient, worker: Process
) -> None:
    user = create_user(client)
    path, job_id, token = split(user["welcome_email_status_url"])

    assert path == f"/api/v1/job-status/{user['welcome_email_job_id']}"
    wait_for_job_state(job_id, JobState.SUCCEEDED)
    response = client.get(user["welcome_email_status_url"])

    assert response.status_code == 200
    assert response.json() == {"state": "succeeded", "progress": None, "result": "sent"}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_only_a_hash_of_the_token_is_stored(client: TestClient) -> None:
    user = create_user(client)
    _, job_id, token = split(user["welcome_email_status_url"])
    with transaction() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None
        assert job.status_token_hash is not None and token not in job.status_token_hash
        assert len(job.status_token_hash) == 64


def test_a_wrong_token_another_job_or_a_bad_id_all_answer_the_same_404(
    client: TestClient,
) -> None:
    first, second = create_user(client), create_user(client)
    path, job_id, token = split(first["welcome_email_status_url"])
    _, other_id, other_token = split(second["welcome_email_status_url"])

    for url in (
        f"{path}?token={other_token}",  # another job's token
        f"/api/v1/job-status/{other_id}?token={token}",  # this token, another job
        f"/api/v1/job-status/{uuid.uuid4()}?token={token}",  # no such job
        f"{path}?token={token[:-1]}",
        f"{path}?token={token}x",
        f"{path}?token={'y' * 10_000}",
        f"{path}?token=",
        path,  # no token
        f"/api/v1/job-status/not-a-uuid?token={token}",
        f"/api/v1/job-status/{job_id.upper()}x?token={token}",
        f"{path}?token=%00%ff",
    ):
        response = client.get(url)
        assert (response.status_code, response.json()) == (404, NOT_FOUND), url
    assert client.get(first["welcome_email_status_url"]).status_code == 200


def test_the_status_url_needs_no_admin_token_and_ignores_one(client: TestClient) -> None:
    user = create_user(client)

    response = client.get(
        user["welcome_email_status_url"], headers={"Authorization": "Bearer wrong"}
    )

    assert response.status_code == 200
    assert response.json()["state"] == "queued"


def test_an_idempotent_replay_answers_the_same_status_url(client: TestClient) -> None:
    payload = new_user_payload()
    headers = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    first = client.post("/api/v1/users", json=payload, headers=headers).json()
    again = client.post("/api/v1/users", json=payload, headers=headers).json()

    assert again["welcome_email_status_url"] == first["welcome_email_status_url"]
    assert client.get(again["welcome_email_status_url"]).status_code == 200


def test_without_a_welcome_job_there_is_no_status_url(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "send_welcome_email", False)

    user = create_user(client)

    assert user["welcome_email_job_id"] is None
    assert user["welcome_email_status_url"] is None
