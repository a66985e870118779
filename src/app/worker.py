"""The Celery application, configured from `Settings` only.

Start a worker with `celery -A app.worker.celery_app worker -l info`.
"""

import logging
from typing import Any

import celery.apps.worker
from celery import Celery, bootsteps
from celery.signals import beat_init, setup_logging, task_unknown, worker_process_init
from kombu import Exchange, Queue

from app.core.config import Settings, settings
from app.core.db import engine, transaction
from app.core.logging import configure_logging
from app.jobs import broker_fixes, ledger
from app.jobs.beat_guard import BeatAlreadyRunning, hold_beat_lock
from app.jobs.task import as_job_id
from app.jobs.worker_probe import LoopTick, WorkerProbeStep
from app.tasks.catalog import PRUNE_FINISHED_JOBS, REAP_ABANDONED_JOBS

logger = logging.getLogger(__name__)

TASK_MODULES = ["app.tasks.example_tasks", "app.tasks.maintenance"]


def redis_transport_options(settings: Settings) -> dict[str, Any]:
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


def amqp_transport_options(settings: Settings) -> dict[str, Any]:
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


def task_queues(settings: Settings) -> list[Queue]:
    name = settings.task_default_queue
    if not settings.broker_is_amqp:
        return [Queue(name)]
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
    ]


def dead_letter_queues(settings: Settings) -> list[Queue]:
    """Where RabbitMQ moves the messages no worker could take; nothing consumes them."""
    queues = []
    for queue in task_queues(settings):
        name = dead_letter_queue_name(queue.name)
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


AMQP_ONLY_CONFIG: dict[str, Any] = {
    # Our queue's exchange, for anything published without naming a queue.
    "task_default_exchange_type": "topic",
    # Quorum queues refuse global QoS: per-consumer prefetch, and countdowns (retry
    # backoff) wait in the broker's delay queues, not unacknowledged in a worker.
    "worker_detect_quorum_queues": True,
    "broker_native_delayed_delivery_queue_type": "quorum",
    # A frozen broker or a dead link is noticed by a worker within about 20 s.
    "broker_heartbeat": 10,
}


def build_celery_config(settings: Settings) -> dict[str, Any]:
    visibility_timeout = settings.effective_visibility_timeout
    amqp = settings.broker_is_amqp
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "result_backend": settings.result_backend,
        # JSON only: pickle would let anyone who can write to the broker run code.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # Named queues only; a typo in a queue name is an error, not a new queue.
        "task_queues": task_queues(settings),
        "task_default_queue": settings.task_default_queue,
        "task_create_missing_queues": False,
        # Acknowledge after the task ends, so a crash mid-task means redelivery.
        "task_acks_late": True,
        # A killed child process puts its message back instead of acking it.
        "task_reject_on_worker_lost": True,
        # Ordinary failures go through the retry policy, not broker redelivery.
        "task_acks_on_failure_or_timeout": True,
        # One unacknowledged message per process: nothing hoarded by a busy worker.
        "worker_prefetch_multiplier": 1,
        "task_time_limit": settings.task_time_limit,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "broker_transport_options": (
            amqp_transport_options(settings) if amqp else redis_transport_options(settings)
        ),
        "result_backend_transport_options": {"visibility_timeout": visibility_timeout},
        "visibility_timeout": visibility_timeout,
        "broker_connection_timeout": settings.broker_connect_timeout,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_pool_acquire_timeout": settings.broker_socket_timeout,
        # Bounded publish retries: a dead broker costs a request well under a second.
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": settings.publish_max_retries,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        # Tasks cut off from the broker stop, rather than run twice in parallel.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # The ledger records outcomes; results are not needed unless a backend is set.
        "task_ignore_result": settings.result_backend is None,
        "worker_send_task_events": settings.task_events,
        "task_send_sent_event": settings.task_events,
        "worker_hijack_root_logger": False,
        "beat_schedule": {
            "prune-finished-jobs": {
                "task": PRUNE_FINISHED_JOBS.name,
                "schedule": settings.prune_interval_seconds,
            },
            "reap-abandoned-jobs": {
                "task": REAP_ABANDONED_JOBS.name,
                "schedule": settings.reaper_interval_seconds,
            },
        },
        "timezone": "UTC",
    }
    if amqp:
        config.update(AMQP_ONLY_CONFIG)
    return config


class DeclareDeadLetterQueues(bootsteps.StartStopStep):
    """On RabbitMQ, a worker declares the dead-letter exchanges and queues before it
    consumes, so nothing it rejects is dead-lettered to an exchange that does not exist."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def include_if(self, consumer: Any) -> bool:
        return settings.broker_is_amqp

    def start(self, consumer: Any) -> None:
        channel = consumer.connection.default_channel
        for queue in dead_letter_queues(settings):
            queue.bind(channel).declare()


broker_fixes.apply()
celery_app = Celery("app", task_cls="app.jobs.task:DurableTask", include=TASK_MODULES)
celery_app.conf.update(build_celery_config(settings))
celery_app.steps["worker"].add(WorkerProbeStep)
celery_app.steps["consumer"].add(LoopTick)
celery_app.steps["consumer"].add(DeclareDeadLetterQueues)


@setup_logging.connect
def _use_our_logging(**_: Any) -> None:
    configure_logging()


def _say_through_logging(message: str, *_: Any) -> None:
    """Celery writes its shutdown notices straight to the console, past logging: as log
    lines they stay JSON in containers. (They are said from a signal handler; logging's
    handler lock is reentrant, so the worst case is one line cut by another.)"""
    logging.getLogger("celery.apps.worker").info(message)


celery.apps.worker.safe_say = _say_through_logging  # type: ignore[attr-defined]


@beat_init.connect
def _be_the_only_beat(**_: Any) -> None:
    try:
        hold_beat_lock()
    except BeatAlreadyRunning as exc:
        logger.critical("Beat not started: %s", exc)
        # SystemExit, not an Exception: Celery logs and swallows what a handler raises.
        raise SystemExit(1) from exc


@worker_process_init.connect
def _drop_inherited_connections(**_: Any) -> None:
    """A forked pool process must not share the parent's database sockets."""
    engine.dispose(close=False)


@task_unknown.connect
def _fail_jobs_of_unknown_tasks(name: str, id: str, **_: Any) -> None:  # noqa: A002
    """Celery drops a message whose task it does not know; the ledger says so too."""
    job_id = as_job_id(id)
    if job_id is None:
        return
    with transaction() as session:
        ledger.mark_unrunnable(session, job_id, f"no worker knows the task {name!r}")
