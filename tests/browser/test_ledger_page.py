"""The ledger page in headless Chromium, against a real API server, worker and PostgreSQL."""

import uuid

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy import func, update

from app.core.db import transaction
from durable_jobs import Job, JobState
from tests.support.factories import WorkerFactory
from tests.support.ledger import job_row, new_user_payload, wait_for_job_state
from tests.support.ledger_rows import insert_job

ADMIN_TOKEN = "test-admin-token"
TASK = "users.send_welcome_email"


def open_ledger(page: Page, api_url: str, token: str) -> None:
    page.goto(f"{api_url}/admin/jobs")
    page.fill("#token", token)
    page.click("#token-form button[type=submit]")


def create_user(api_url: str) -> str:
    response = httpx.post(f"{api_url}/api/v1/users", json=new_user_payload(), timeout=10)
    assert response.status_code == 201
    return str(response.json()["welcome_email_job_id"])


def test_a_failed_job_is_listed_with_its_error_and_retried(
    page: Page, api_url: str, worker_factory: WorkerFactory
) -> None:
    failing_worker = worker_factory(email_simulated_failures="9", email_max_retries="0")
    job_id = create_user(api_url)
    wait_for_job_state(job_id, JobState.FAILED)
    failing_worker.stop()

    open_ledger(page, api_url, ADMIN_TOKEN)
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    expect(row.locator(".task")).to_have_text(TASK)
    expect(row.locator(".state")).to_have_text("failed")
    expect(row.locator(".last-error")).to_contain_text("simulated mail server outage")
    expect(row.locator(".attempts")).to_have_text("1 of 4")
    expect(row.locator(".finished")).to_contain_text("UTC")
    row.get_by_role("button", name="Retry").click()

    expect(page.locator("#message")).to_have_text(
        f"Job {job_id} is queued again; its next run is attempt 2."
    )
    expect(row.locator(".state")).to_have_text("queued")
    expect(row.locator(".finished")).to_have_text("—")
    queued = job_row(job_id)
    assert queued is not None
    assert (queued.state, queued.finished_at, queued.attempts) == (JobState.QUEUED, None, 1)
    worker_factory(name="w2")
    succeeded = wait_for_job_state(job_id, JobState.SUCCEEDED, timeout=30)
    assert succeeded.attempts == 2


def test_a_wrong_token_shows_an_error_and_the_right_one_lasts_for_the_tab(
    page: Page, api_url: str
) -> None:
    open_ledger(page, api_url, "not-the-token")

    message = page.locator("#message")
    expect(message).to_have_text("The admin token was refused (HTTP 403): enter the right one.")
    expect(message).to_have_class("error")
    expect(page.locator("#jobs")).to_be_hidden()

    page.fill("#token", ADMIN_TOKEN)
    page.click("#token-form button[type=submit]")
    expect(message).to_have_text("No failed jobs.")
    page.reload()
    expect(message).to_have_text("No failed jobs.")


def test_ledger_text_is_shown_as_text_never_as_markup(page: Page, api_url: str) -> None:
    hostile = '<img src=x id=injected onerror="document.title=1"><script>alert(1)</script>'
    job_id = insert_job(TASK, JobState.FAILED, wait=0.1, run=0.1)
    set_last_error(job_id, hostile)

    open_ledger(page, api_url, ADMIN_TOKEN)

    error_cell = page.locator(f'tr[data-job-id="{job_id}"] .last-error')
    expect(error_cell).to_have_text(hostile)
    expect(page.locator("#injected")).to_have_count(0)
    expect(page).to_have_title("Job ledger")


def test_other_states_can_be_chosen(page: Page, api_url: str) -> None:
    succeeded = insert_job(TASK, JobState.SUCCEEDED, wait=0.1, run=0.1)
    open_ledger(page, api_url, ADMIN_TOKEN)
    expect(page.locator("#message")).to_have_text("No failed jobs.")

    page.select_option("#state", "succeeded")

    row = page.locator(f'tr[data-job-id="{succeeded}"]')
    expect(row.locator(".state")).to_have_text("succeeded")
    expect(row.get_by_role("button", name="Retry")).to_have_count(0)


def set_last_error(job_id: uuid.UUID, error: str) -> None:
    with transaction() as session:
        session.execute(update(Job).where(Job.id == job_id).values(last_error=error))


def test_progress_and_result_are_shown_and_a_running_job_can_be_cancelled(
    page: Page, api_url: str
) -> None:
    done = insert_job("results.count_to", "succeeded", wait=0.1, run=0.1)
    running = insert_job("results.report_forever", "started", wait=0.1, worker="w1")
    set_progress(done, 5, 5, "step 5", result={"counted": 5})
    set_progress(running, 3, None, "working", result=None)
    open_ledger(page, api_url, ADMIN_TOKEN)

    page.select_option("#state", "")

    finished = page.locator(f'tr[data-job-id="{done}"]')
    expect(finished.locator(".progress")).to_have_text("5 of 5: step 5")
    expect(finished.locator(".result")).to_have_text('{"counted":5}')
    expect(finished.get_by_role("button", name="Cancel")).to_have_count(0)
    row = page.locator(f'tr[data-job-id="{running}"]')
    expect(row.locator(".progress")).to_have_text("3: working")
    expect(row.locator(".result")).to_have_text("—")
    row.get_by_role("button", name="Cancel").click()

    expect(page.locator("#message")).to_have_text(
        f"Job {running} is running; its worker is asked to stop it."
    )
    expect(row.locator(".state")).to_have_text("started (cancelling)")
    cancelling = job_row(running)
    assert cancelling is not None
    assert (cancelling.state, cancelling.cancel_requested_at is not None) == (
        JobState.STARTED,
        True,
    )


def set_progress(
    job_id: uuid.UUID, done: int, total: int | None, note: str, result: object
) -> None:
    with transaction() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                progress_done=done,
                progress_total=total,
                progress_note=note,
                progress_at=func.now(),
                result=result,
            )
        )
