"""What a worker declares on RabbitMQ, read back from the broker itself."""

import json
from typing import Any

from app.core.db import transaction
from durable_jobs import JobState, TaskPolicy
from durable_jobs._enqueue import add_and_publish_after_commit
from tests.support.broker import dead_letters
from tests.support.broker_env import rabbitmq_only, rabbitmqctl
from tests.support.environment import RABBITMQ_VHOST
from tests.support.ledger import wait_for_job_state
from tests.support.runner import Process, wait_until
from tests.support.settings import settings

pytestmark = rabbitmq_only


def declared_queues() -> dict[str, dict[str, Any]]:
    columns = ("name", "type", "arguments")
    listed = rabbitmqctl("-q", "-p", RABBITMQ_VHOST, "list_queues", *columns, "--formatter", "json")
    return {
        queue["name"]: {"type": queue["type"], **{k: v for k, _, v in queue["arguments"]}}
        for queue in json.loads(listed)
    }


def test_the_task_queue_is_a_quorum_queue_with_dead_letters_and_a_delivery_limit(
    worker: Process,
) -> None:
    queues = declared_queues()

    name = settings.task_default_queue
    assert queues[name]["type"] == "quorum"
    assert queues[name]["x-dead-letter-exchange"] == f"{name}.dead"
    assert queues[name]["x-dead-letter-strategy"] == "at-least-once"
    assert queues[name]["x-delivery-limit"] == settings.broker_delivery_limit
    assert queues[f"{name}.dead"]["type"] == "quorum"
    # Celery's native delayed delivery is declared (for a host's own countdowns); the
    # engine's retries and scheduled jobs wait in the ledger instead.
    assert {f"celery_delayed_{level}" for level in range(28)} <= set(queues)
    assert "Global QoS is disabled" in worker.log()


UNKNOWN = TaskPolicy("nobody.knows_this_task")


def test_a_message_no_worker_can_run_is_dead_lettered_not_dropped(worker: Process) -> None:
    with transaction() as session:
        job_id = add_and_publish_after_commit(session, UNKNOWN, {}).id

    wait_for_job_state(job_id, JobState.FAILED, timeout=15)

    wait_until(lambda: dead_letters() == 1, 10, what="the message in the dead-letter queue")
