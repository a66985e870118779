"""The relay publishes what the outbox holds, once the broker takes it."""

from collections.abc import Iterator

import pytest

from app.core.db import transaction
from app.tasks.example_tasks import send_welcome_email
from durable_jobs import Job, relay_pending_jobs
from durable_jobs import _ledger as ledger
from tests.support.broker import queued_messages
from tests.support.broker_env import rabbitmq_only, rabbitmqctl
from tests.support.environment import RABBITMQ_VHOST
from tests.support.ledger import job_row
from tests.support.settings import settings


def test_unpublished_jobs_are_published_and_marked() -> None:
    with transaction() as session:
        ids = [
            ledger.add_job(session, settings, send_welcome_email.policy, {"user_id": n}).id
            for n in range(3)
        ]

    assert relay_pending_jobs(min_age_seconds=0) == 3

    assert queued_messages() == 3
    for job_id in ids:
        row = job_row(job_id)
        assert row is not None and row.published_at is not None
    assert relay_pending_jobs(min_age_seconds=0) == 0


def test_the_relay_leaves_fresh_jobs_to_the_api() -> None:
    with transaction() as session:
        ledger.add_job(session, settings, send_welcome_email.policy, {"user_id": 1})

    assert relay_pending_jobs(min_age_seconds=60) == 0
    assert queued_messages() == 0


@pytest.fixture
def queue_holding_one_message() -> Iterator[None]:
    """A RabbitMQ policy caps the run's queue at one message; our queue refuses the
    publishes above it (x-overflow=reject-publish), so the broker nacks them."""
    policy = ("set_policy", "-p", RABBITMQ_VHOST, "--apply-to", "queues", "cap-at-one")
    rabbitmqctl(*policy, f"^{settings.task_default_queue}$", '{"max-length": 1}')
    yield
    rabbitmqctl("clear_policy", "-p", RABBITMQ_VHOST, "cap-at-one")


@rabbitmq_only
def test_a_publish_rabbitmq_refuses_stays_in_the_outbox(queue_holding_one_message: None) -> None:
    with transaction() as session:
        ids = [
            ledger.add_job(session, settings, send_welcome_email.policy, {"user_id": n}).id
            for n in range(3)
        ]

    # Quorum queues apply the cap a little late: one or two get in, never all three.
    published = relay_pending_jobs(min_age_seconds=0)

    assert 1 <= published < 3
    assert queued_messages() == published
    unpublished = [job_id for job_id in ids if (job_row(job_id) or Job()).published_at is None]
    assert len(unpublished) == 3 - published
