"""T10: the RabbitMQ node killed (kill -9) while the relay publishes into its durable
quorum queue with publisher confirms. Every publish RabbitMQ confirmed survives the
crash; the unconfirmed ones stay in the outbox and the relay publishes them again; no
job's effect happens twice. Runs on a private node whatever broker the suite tests."""

import time
from collections.abc import Iterator

import pytest
from amqp.exceptions import NotFound
from kombu import Connection
from sqlalchemy import text

from app.core.db import engine
from tests.faults.checker import check, drain
from tests.faults.figures import add_row
from tests.faults.stack import Stack, add_record_jobs, running_stack
from tests.support.runner import wait_until
from tests.support.servers import PrivateRabbitMQ, private_rabbitmq
from tests.support.settings import settings

pytestmark = pytest.mark.faults

JOBS = 1000
# The stack's warm-up sign-up is published too, and already ran.
WARM_UP_JOBS = 1


@pytest.fixture
def rabbitmq() -> Iterator[PrivateRabbitMQ]:
    with private_rabbitmq() as node:
        yield node


@pytest.fixture
def rabbitmq_stack(rabbitmq: PrivateRabbitMQ) -> Iterator[Stack]:
    yield from running_stack(rabbitmq.url)


def test_t10_rabbitmq_crash_keeps_every_confirmed_publish(
    rabbitmq_stack: Stack, rabbitmq: PrivateRabbitMQ
) -> None:
    stack = rabbitmq_stack
    declare_every_queue(stack)
    history = stack.history()
    add_record_jobs(history, count=JOBS)
    wait_until(lambda: published_jobs() >= JOBS // 3, 60, interval=0.01, what="a third published")

    rabbitmq.crash()
    # Stopped, so that what the queue holds after the restart is what survived.
    stack.relay.stop(timeout=15)
    stack.processes.remove(stack.relay)
    confirmed = published_jobs() - WARM_UP_JOBS
    rabbitmq.start()
    restarted = time.monotonic()
    survived = settled_queue_length(rabbitmq)
    stack.start_relay()
    stack.start_worker(concurrency=2)
    drain(engine, timeout=120)

    assert survived >= confirmed, f"{confirmed - survived} confirmed publishes were lost"
    verdict = check(engine, history)
    verdict.assert_safe()
    add_row(
        "T10 RabbitMQ kill -9 mid-publish (quorum queue, confirms)",
        verdict,
        drain=time.monotonic() - restarted,
        notes=f"{confirmed} of {JOBS} publishes confirmed before the crash, {survived} "
        "messages in the queue after the restart; the relay published the rest again",
    )


def declare_every_queue(stack: Stack) -> None:
    """As in production, the queues exist long before the fault: a worker declares them."""
    worker = stack.start_worker(concurrency=1)
    worker.stop()
    stack.workers.remove(worker)


def published_jobs() -> int:
    with engine.connect() as connection:
        count = connection.scalar(text("SELECT count(*) FROM jobs WHERE published_at IS NOT NULL"))
    return int(count or 0)


def queued_messages(rabbitmq: PrivateRabbitMQ) -> int:
    with Connection(rabbitmq.url, connect_timeout=5) as connection:
        try:
            declared = connection.channel().queue_declare(settings.task_default_queue, passive=True)
        except NotFound:
            return 0
    return int(declared.message_count)


def settled_queue_length(rabbitmq: PrivateRabbitMQ) -> int:
    """The queue's length once it stops changing: a quorum queue replays its log after
    the node starts answering."""
    lengths = [queued_messages(rabbitmq)]
    while len(lengths) < 3 or len(set(lengths[-3:])) > 1:
        assert len(lengths) < 60, f"the queue length never settled: {lengths}"
        time.sleep(0.5)
        lengths.append(queued_messages(rabbitmq))
    return lengths[-1]
