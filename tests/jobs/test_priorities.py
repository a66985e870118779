"""Priorities, where the broker orders messages: Redis always, RabbitMQ from 4.0."""

import pytest
from kombu import Connection
from sqlalchemy import text

from app.core.db import engine, transaction
from durable_jobs import JobState, task, wait_for_publishing
from tests.support.broker_env import ON_RABBITMQ
from tests.support.factories import WorkerFactory
from tests.support.ledger import job_row, wait_for_job_state
from tests.support.limited_tasks import bulk
from tests.support.settings import settings

BACKLOG = 10


def rabbitmq_major_version() -> int:
    with Connection(settings.broker_url) as connection:
        connection.connect()
        version = connection.connection.server_properties["version"]
    return int(str(version).split(".")[0])


@pytest.mark.slow
def test_an_urgent_job_overtakes_a_backlog(worker_factory: WorkerFactory) -> None:
    with transaction() as session:
        backlog = [bulk.enqueue(session, key=f"bulk-{n}").id for n in range(BACKLOG)]
    assert wait_for_publishing(30)
    with transaction() as session:
        urgent = bulk.with_priority(0).enqueue(session, key="urgent").id
    assert wait_for_publishing(30)

    worker_factory("priorities", concurrency=1)  # one process: one job at a time, in order
    for job_id in [*backlog, urgent]:
        wait_for_job_state(job_id, JobState.SUCCEEDED, timeout=60)

    with engine.connect() as connection:
        order = list(connection.scalars(text("SELECT key FROM executions ORDER BY id")))
    position = order.index("urgent")
    if not ON_RABBITMQ:
        assert position == 0, order
    elif rabbitmq_major_version() >= 4:
        # Quorum queues deliver high and normal messages at about 2:1, not strictly.
        assert position <= 2, order
    else:
        # Quorum queues on RabbitMQ 3.x have no priorities: first in, first out.
        assert position == BACKLOG, order


def test_the_priority_is_kept_in_the_ledger() -> None:
    with transaction() as session:
        default = bulk.enqueue(session, key="a").id
        urgent = bulk.with_priority(0).enqueue(session, key="b").id

    default_row, urgent_row = job_row(default), job_row(urgent)
    assert default_row is not None and default_row.priority == 9
    assert urgent_row is not None and urgent_row.priority == 0
    assert bulk.policy.priority == 9  # with_priority makes a new handle


@pytest.mark.parametrize("priority", [-1, 10, True, 2.5])
def test_a_priority_out_of_range_is_refused(priority: object) -> None:
    with pytest.raises(ValueError, match="from 0 to 9"):
        task("priorities.refused", priority=priority)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="from 0 to 9"):
        bulk.with_priority(priority)  # type: ignore[arg-type]
