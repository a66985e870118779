"""The broker topology, in one place: the queues, their dead letters, the transport
options, and how deep each queue is."""

from collections.abc import Iterable
from typing import Any

import redis
from amqp.exceptions import NotFound
from kombu import Connection, Exchange, Queue

from durable_jobs._settings import JobsSettings
from durable_jobs._tls import amqp_tls_options, redis_client_options

BROKER_TIMEOUT_SECONDS = 1.0
# kombu's Redis transport keeps a message of priority p > 0 under "<queue>\x06\x16<p>".
REDIS_PRIORITY_SEPARATOR = "\x06\x16"
REDIS_PRIORITY_STEPS = (3, 6, 9)
MAX_PRIORITY = 9


def broker_priority(priority: int | None, *, amqp: bool) -> int | None:
    """The message priority for a job's priority (0 first, 9 last; None is 0).

    Redis (kombu) reads its lists 0 (the queue's own), 3, 6, 9 in turn and puts a
    priority in the step at or below it: None and 0-2 share the queue's own list.
    AMQP counts the other way (larger first); RabbitMQ 4 quorum queues have two levels,
    above 4 ("high") and the rest, and 3.x quorum queues none, so every job carries
    one there: 0-4 become high, 5-9 normal.
    """
    if amqp:
        return MAX_PRIORITY - (priority or 0)
    return priority


def redis_transport_options(settings: JobsSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        # Redelivery of a message whose worker died; above the hard limit so a
        # running task is never handed to a second worker.
        "visibility_timeout": settings.effective_visibility_timeout,
        # Sweep for such messages every 5 s instead of kombu's ~100 s.
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
        # Bound connect and reads, so a dead or frozen broker cannot hang a publish.
        "socket_connect_timeout": settings.broker_connect_timeout,
        "socket_timeout": settings.broker_socket_timeout,
        "retry_on_timeout": True,
        "health_check_interval": 10,
        # The producer's reconnect loop gives up instead of retrying forever.
        "max_retries": settings.publish_max_retries,
    }
    if settings.broker_broadcast_prefix:
        options["fanout_prefix"] = f"/{settings.broker_broadcast_prefix}."
    return options


def amqp_transport_options(settings: JobsSettings) -> dict[str, Any]:
    """py-amqp's options; its connect (TCP and AMQP handshake) is bounded by
    broker_connection_timeout."""
    return {
        # RabbitMQ must confirm each publish, or it may drop messages silently;
        # quorum queues require confirms.
        "confirm_publish": True,
        # Bound every socket read and write, so a frozen broker cannot hang a
        # publish while it waits for the confirm.
        "read_timeout": settings.broker_socket_timeout,
        "write_timeout": settings.broker_socket_timeout,
        # The producer's reconnect loop gives up instead of retrying forever.
        "max_retries": settings.publish_max_retries,
    }


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}.dead"


def queue_names(settings: JobsSettings, task_queues: Iterable[str]) -> list[str]:
    """The default queue and every queue a declared task uses."""
    return sorted({settings.task_default_queue, *task_queues})


def task_queues(settings: JobsSettings, names: Iterable[str]) -> list[Queue]:
    if not settings.broker_is_amqp:
        return [Queue(name) for name in names]
    return [
        Queue(
            name,
            # Topic, not direct: Celery's native delayed delivery (countdowns and
            # retries on quorum queues) cannot route to a direct exchange.
            Exchange(name, type="topic"),
            routing_key=name,
            durable=True,
            queue_arguments={
                # Replicated, durable, and with a delivery limit (classic queues have none).
                "x-queue-type": "quorum",
                # Rejected and over-delivered messages go to <queue>.dead, not nowhere.
                "x-dead-letter-exchange": dead_letter_queue_name(name),
                "x-delivery-limit": settings.broker_delivery_limit,
                # Dead-lettering is confirmed by the dead-letter queue before the
                # message leaves this one (RabbitMQ 3.10+; it needs reject-publish).
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        for name in names
    ]


def dead_letter_queues(names: Iterable[str]) -> list[Queue]:
    """Where RabbitMQ moves the messages no worker could take; nothing consumes them."""
    queues = []
    for queue in names:
        name = dead_letter_queue_name(queue)
        queues.append(
            Queue(
                name,
                Exchange(name, type="fanout"),
                routing_key=name,
                durable=True,
                queue_arguments={"x-queue-type": "quorum"},
            )
        )
    return queues


def watched_queues(settings: JobsSettings, names: Iterable[str]) -> list[str]:
    """The queues whose depth is worth reporting: each task queue and, on RabbitMQ, its
    dead letters (jobs no worker could take: worth an alert when above zero)."""
    watched = set(names)
    if settings.broker_is_amqp:
        watched |= {dead_letter_queue_name(name) for name in watched}
    return sorted(watched)


def queue_depths(settings: JobsSettings, queues: list[str]) -> dict[str, int]:
    if settings.broker_is_amqp:
        return _rabbitmq_queue_depths(settings, queues)
    return _redis_queue_depths(settings, queues)


def redis_queue_keys(queue: str) -> list[str]:
    """The Redis lists that hold a queue's messages: its own and one per priority step."""
    return [queue, *(f"{queue}{REDIS_PRIORITY_SEPARATOR}{step}" for step in REDIS_PRIORITY_STEPS)]


def _redis_queue_depths(settings: JobsSettings, queues: list[str]) -> dict[str, int]:
    """LLEN of each queue and of its priority lists."""
    client = redis.Redis.from_url(
        settings.broker_url,
        socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
        socket_timeout=BROKER_TIMEOUT_SECONDS,
        **redis_client_options(settings, settings.broker_url),
    )
    try:
        pipeline = client.pipeline(transaction=False)
        for queue in queues:
            for key in redis_queue_keys(queue):
                pipeline.llen(key)
        lengths = pipeline.execute()
    finally:
        client.close()
    per_queue = len(REDIS_PRIORITY_STEPS) + 1
    return {
        queue: sum(int(n) for n in lengths[i * per_queue : (i + 1) * per_queue])
        for i, queue in enumerate(queues)
    }


def _rabbitmq_queue_depths(settings: JobsSettings, queues: list[str]) -> dict[str, int]:
    """Ready messages of each queue, from a passive declare (it never creates one); a
    queue no worker or publisher has declared yet holds nothing."""
    depths: dict[str, int] = {}
    with Connection(
        settings.broker_url,
        ssl=amqp_tls_options(settings) if settings.broker_uses_tls else False,
        connect_timeout=BROKER_TIMEOUT_SECONDS,
        transport_options={
            "read_timeout": BROKER_TIMEOUT_SECONDS,
            "write_timeout": BROKER_TIMEOUT_SECONDS,
        },
    ) as connection:
        connection.ensure_connection(max_retries=1)
        for queue in queues:
            # A missing queue closes the channel: one channel per queue. (kombu types
            # it as StdChannel; py-amqp's channel has queue_declare.)
            channel: Any = connection.channel()
            try:
                depths[queue] = channel.queue_declare(queue, passive=True).message_count
            except NotFound:
                depths[queue] = 0
            finally:
                channel.close()
    return depths
