from typing import Any

from celery import bootsteps

from durable_jobs import _broker as broker
from durable_jobs._runtime import current


class DeclareDeadLetterQueues(bootsteps.StartStopStep):
    """On RabbitMQ, a worker declares the dead-letter exchanges and queues before it
    consumes, so nothing it rejects is dead-lettered to an exchange that does not exist."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def include_if(self, consumer: Any) -> bool:
        return current().settings.broker_is_amqp

    def start(self, consumer: Any) -> None:
        channel = consumer.connection.default_channel
        names = [queue.name for queue in consumer.app.conf.task_queues]
        for queue in broker.dead_letter_queues(names):
            queue.bind(channel).declare()
