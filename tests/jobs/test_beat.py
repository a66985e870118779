"""Celery beat: exactly one runs, and its reaper brings back abandoned jobs without the relay."""

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

from app.core.db import transaction
from durable_jobs import JobState
from durable_jobs._maintenance import reap_abandoned_jobs
from tests.support.factories import WorkerFactory
from tests.support.launchers import start_beat
from tests.support.ledger import job_row, new_user_payload, wait_for_job_state
from tests.support.runner import child_env, wait_until


def test_a_second_beat_refuses_to_run_beside_the_first(tmp_path: Path) -> None:
    first = start_beat(child_env(), tmp_path / "first-schedule")
    try:
        wait_until(lambda: "holds the schedule lock" in first.log(), 20, what="the first beat")
        second = start_beat(child_env(), tmp_path / "second-schedule")
        try:
            second.popen.wait(20)
        finally:
            second.stop()

        assert second.popen.returncode != 0
        assert "another Celery beat holds the schedule lock" in second.log()
        assert first.popen.poll() is None
    finally:
        first.stop()


def abandon(job_id: str) -> None:
    """Make a job look like its worker died long ago: started, lease run out."""
    with transaction() as session:
        session.execute(
            text(
                """
                UPDATE jobs SET state = :started, attempts = 1, worker = 'gone@nowhere',
                       worker_pid = 1, started_at = now() - interval '10 minutes',
                       lease_expires_at = now() - interval '5 minutes',
                       published_at = now() - interval '10 minutes'
                WHERE id = :id
                """
            ),
            {"id": job_id, "started": JobState.STARTED},
        )


def test_the_reaper_requeues_and_publishes_an_abandoned_job(
    client: TestClient, worker_factory: WorkerFactory
) -> None:
    job_id = client.post("/api/v1/users", json=new_user_payload()).json()["welcome_email_job_id"]
    wait_until(lambda: (row := job_row(job_id)) is not None and row.published_at is not None, 10)
    abandon(job_id)

    assert reap_abandoned_jobs() == {"requeued": 1, "published": 1}

    worker_factory()
    finished = wait_for_job_state(job_id, JobState.SUCCEEDED)
    assert finished.attempts == 2
