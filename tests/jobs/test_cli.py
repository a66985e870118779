"""The `jobs` command, run as a real process against the test run's database and broker."""

import json
import subprocess
import sys
import uuid
from typing import Any

from app.core.db import transaction
from durable_jobs import JobState, define_schedule, get_schedule
from tests.support.broker import queued_messages
from tests.support.ledger import job_row
from tests.support.ledger_rows import insert_job
from tests.support.runner import VENV_BIN, child_env
from tests.support.settings import settings

TASK = "users.send_welcome_email"


def jobs(*args: str, module: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "durable_jobs"] if module else [str(VENV_BIN / "jobs")]
    return subprocess.run(
        [*command, *args], env=child_env(), capture_output=True, text=True, timeout=60
    )


def jobs_json(*args: str) -> Any:
    result = jobs(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_list_shows_jobs_newest_first_and_filters_by_state() -> None:
    older = insert_job(TASK, "failed", created_ago=10)
    newer = insert_job(TASK, "succeeded", created_ago=5)

    page = jobs_json("list")
    failed = jobs_json("list", "--state", "failed")
    text = jobs("list")

    assert [item["id"] for item in page["items"]] == [str(newer), str(older)]
    assert [item["id"] for item in failed["items"]] == [str(older)]
    assert text.returncode == 0 and str(older) in text.stdout and str(newer) in text.stdout


def test_list_pages_with_the_cursor() -> None:
    ids = [insert_job(TASK, "succeeded", created_ago=10 - n) for n in range(3)]

    first = jobs_json("list", "--limit", "2")
    second = jobs_json("list", "--limit", "2", "--cursor", first["next_cursor"])

    assert [item["id"] for item in first["items"] + second["items"]] == [
        str(job_id) for job_id in reversed(ids)
    ]
    assert second["next_cursor"] is None


def test_show_prints_the_ledger_row() -> None:
    job_id = insert_job(TASK, "failed", attempts=2)

    shown = jobs_json("show", str(job_id))
    text = jobs("show", str(job_id), module=True)

    assert shown["id"] == str(job_id)
    assert shown["state"] == "failed" and shown["attempts"] == 2
    assert text.returncode == 0 and "id:" in text.stdout and str(job_id) in text.stdout


def test_retry_queues_a_failed_job_again() -> None:
    # A queue only its task names: the command declares it, as a worker would.
    queue = f"{settings.task_default_queue}-other"
    job_id = insert_job(TASK, "failed", queue=queue)

    retried = jobs_json("retry", str(job_id))

    assert retried["state"] == JobState.QUEUED
    row = job_row(job_id)
    assert row is not None and row.state == JobState.QUEUED
    assert row.published_at is not None  # the command handed it to the broker
    assert queued_messages(queue) == 1


def test_cancel_cancels_a_queued_job() -> None:
    job_id = insert_job(TASK, "queued", attempts=0)

    result = jobs("cancel", str(job_id))

    assert result.returncode == 0, result.stderr
    row = job_row(job_id)
    assert row is not None and row.state == JobState.CANCELLED


def test_stats_counts_jobs_per_task_and_state() -> None:
    insert_job(TASK, "failed")
    insert_job(TASK, "succeeded")
    insert_job("other.task", "queued", attempts=0, published=False)

    stats = jobs_json("stats")
    text = jobs("stats")

    assert stats["by_task"] == {TASK: {"failed": 1, "succeeded": 1}, "other.task": {"queued": 1}}
    assert stats["by_state"]["failed"] == 1 and stats["by_state"]["started"] == 0
    assert stats["outbox"] == 1 and stats["oldest_queued_at"] is not None
    assert text.returncode == 0 and "failed=1" in text.stdout


def test_a_malformed_id_is_a_usage_error() -> None:
    result = jobs("show", "not-a-uuid")

    assert result.returncode == 2
    assert "'not-a-uuid' is not a job id" in result.stderr
    assert result.stdout == ""


def test_an_unknown_job_exits_3_and_names_it() -> None:
    unknown = uuid.uuid4()

    for command in ("show", "retry", "cancel"):
        result = jobs(command, str(unknown))
        assert result.returncode == 3, (command, result.stderr)
        assert f"No job with id {unknown}" in result.stderr


def test_an_action_the_state_does_not_allow_exits_4_and_writes_nothing() -> None:
    job_id = insert_job(TASK, "succeeded")

    retry = jobs("retry", str(job_id))
    cancel = jobs("cancel", str(job_id))

    assert retry.returncode == 4 and "Cannot retry" in retry.stderr
    assert cancel.returncode == 4 and "Cannot cancel" in cancel.stderr
    row = job_row(job_id)
    assert row is not None and row.state == JobState.SUCCEEDED


def test_an_unknown_state_and_a_bad_cursor_are_usage_errors() -> None:
    state = jobs("list", "--state", "sleeping")
    cursor = jobs("list", "--cursor", "garbage")

    assert state.returncode == 2 and "sleeping" in state.stderr
    assert cursor.returncode == 2 and "cursor is malformed" in cursor.stderr


def test_an_unreachable_database_is_a_clear_failure() -> None:
    env = child_env({"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none"})
    result = subprocess.run(
        [str(VENV_BIN / "jobs"), "stats"], env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert result.stderr.startswith("Error: the database failed:")


def test_schedules_are_listed_paused_and_resumed() -> None:
    with transaction() as session:
        define_schedule(session, "nightly-welcome", TASK, cron="0 3 * * *", kwargs={"user_id": 1})

    [listed] = jobs_json("schedules", "list")
    assert (listed["name"], listed["task"], listed["cron"]) == (
        "nightly-welcome",
        TASK,
        "0 3 * * *",
    )
    assert listed["paused"] is False

    [paused] = jobs_json("schedules", "pause", "nightly-welcome")
    assert paused["paused"] is True
    with transaction() as session:
        assert get_schedule(session, "nightly-welcome").paused

    [resumed] = jobs_json("schedules", "resume", "nightly-welcome")
    assert resumed["paused"] is False
    text_listing = jobs("schedules", "list")
    assert "nightly-welcome" in text_listing.stdout and "cron 0 3 * * *" in text_listing.stdout


def test_an_unknown_schedule_exits_3() -> None:
    result = jobs("schedules", "pause", "no-such-schedule")
    assert result.returncode == 3
    assert "No schedule named 'no-such-schedule'" in result.stderr
