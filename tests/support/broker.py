"""The broker under test, chosen by TEST_BROKER (redis, the default, or rabbitmq).

Everything a test does to the broker directly goes through here, so each test runs
unchanged on both: counting and purging queued messages, publishing raw messages, an
unreachable broker URL, a private broker to stop and freeze.
"""

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import redis
from amqp.exceptions import NotFound
from kombu import Connection, Producer
from kombu.transport.native_delayed_delivery import MAX_LEVEL, level_name

from durable_jobs import dead_letter_queue_name
from durable_jobs._broker import REDIS_PRIORITY_SEPARATOR
from durable_jobs._runtime import current
from tests.support.broker_env import ON_RABBITMQ
from tests.support.runner import free_port
from tests.support.servers import PrivateBroker, private_rabbitmq, private_redis
from tests.support.settings import settings


def unreachable_broker_url() -> str:
    """A URL of the broker's kind where nothing listens."""
    if ON_RABBITMQ:
        return f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    return f"redis://127.0.0.1:{free_port()}/0"


def private_broker() -> AbstractContextManager[PrivateBroker]:
    return private_rabbitmq() if ON_RABBITMQ else private_redis()


def queued_messages(queue: str = "") -> int:
    """Messages waiting in the queue (delivered but unacknowledged ones not counted)."""
    queue = queue or settings.task_default_queue
    if not ON_RABBITMQ:
        client = redis.Redis.from_url(settings.broker_url)
        try:
            return int(client.llen(queue))
        finally:
            client.close()
    with Connection(settings.broker_url) as connection:
        channel: Any = connection.channel()  # py-amqp's channel; kombu's stub lacks its methods
        try:
            return int(channel.queue_declare(queue, passive=True).message_count)
        except NotFound:
            return 0


def put_messages(count: int, priority: int | None = None) -> None:
    """Put opaque messages in the run's queue, as a backlog the metrics must see."""
    queue = settings.task_default_queue
    if not ON_RABBITMQ:
        client = redis.Redis.from_url(settings.broker_url)
        key = queue if priority is None else f"{queue}{REDIS_PRIORITY_SEPARATOR}{priority}"
        client.lpush(key, *[f"m{n}" for n in range(count)])
        client.close()
        return
    for n in range(count):
        publish_raw({"n": n}, serializer="json", priority=priority)


def publish_raw(body: Any, serializer: str, **properties: Any) -> None:
    """Publish straight to the run's queue, past Celery, as an attacker or a broken
    client could."""
    celery_app = current().celery
    queue = celery_app.amqp.queues[settings.task_default_queue]
    with Connection(settings.broker_url) as connection:
        Producer(connection).publish(
            body,
            serializer=serializer,
            exchange=queue.exchange,
            routing_key=queue.routing_key,
            declare=[queue],
            **properties,
        )


def purge_broker() -> None:
    """Drop this run's messages: its queue names (Redis) or its vhost (RabbitMQ) are its own."""
    if not ON_RABBITMQ:
        client = redis.Redis.from_url(settings.broker_url)
        for key in client.scan_iter(match=f"{settings.task_default_queue}*"):
            client.delete(key)
        client.close()
        return
    with Connection(settings.broker_url) as connection:
        for queue in _rabbitmq_queues_of_the_run():
            channel: Any = connection.channel()
            try:
                channel.queue_purge(queue)
            except NotFound:
                continue
            channel.close()


def _rabbitmq_queues_of_the_run() -> Iterator[str]:
    """The task queue, its dead letters and the delay queues of retries."""
    yield settings.task_default_queue
    yield dead_letter_queue_name(settings.task_default_queue)
    for level in range(MAX_LEVEL + 1):
        yield level_name(level)


def dead_letters() -> int:
    return queued_messages(dead_letter_queue_name(settings.task_default_queue))
