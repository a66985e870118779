"""The relay publishes what the outbox holds, once the broker takes it."""

from app.core.db import transaction
from app.jobs import ledger
from app.jobs.relay import relay_pending_jobs
from app.tasks.catalog import SEND_WELCOME_EMAIL
from tests.support.broker import queued_messages
from tests.support.ledger import job_row


def test_unpublished_jobs_are_published_and_marked() -> None:
    with transaction() as session:
        ids = [ledger.add_job(session, SEND_WELCOME_EMAIL, {"user_id": n}).id for n in range(3)]

    assert relay_pending_jobs(min_age_seconds=0) == 3

    assert queued_messages() == 3
    for job_id in ids:
        row = job_row(job_id)
        assert row is not None and row.published_at is not None
    assert relay_pending_jobs(min_age_seconds=0) == 0


def test_the_relay_leaves_fresh_jobs_to_the_api() -> None:
    with transaction() as session:
        ledger.add_job(session, SEND_WELCOME_EMAIL, {"user_id": 1})

    assert relay_pending_jobs(min_age_seconds=60) == 0
    assert queued_messages() == 0
