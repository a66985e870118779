"""`create_celery(settings)`: the Celery app of the engine, its configuration derived
from the settings only. Worker-only code (probes, beat's guard, signal handlers, the
kombu fix) is named here but loaded only by a worker or beat that starts."""

import importlib
import pkgutil
from collections.abc import Iterable
from typing import Any

from celery import Celery
from sqlalchemy import Engine

from durable_jobs import _broker as broker
from durable_jobs import _runtime
from durable_jobs import _tls as tls
from durable_jobs._db import Database
from durable_jobs._declare import declared_tasks, register
from durable_jobs._publisher import BackgroundPublisher
from durable_jobs._settings import JobsSettings
from durable_jobs._tracing import build_tracer

# Imported by `celery worker` and `celery beat` as they start (Celery's `include`), never
# by an API process: the signal handlers and the kombu fix.
WORKER_MODULES = ["durable_jobs._worker.signals"]
_WORKER_STEPS = [
    "durable_jobs._worker.probe:WorkerProbeStep",
    "durable_jobs._worker.metrics_endpoint:MetricsEndpointStep",
]
_CONSUMER_STEPS = [
    "durable_jobs._worker.probe:LoopTick",
    "durable_jobs._worker.dead_letters:DeclareDeadLetterQueues",
]

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


def create_celery(
    settings: JobsSettings,
    *,
    task_packages: Iterable[str] = (),
    engine: Engine | None = None,
) -> Celery:
    """The Celery app for `settings`, with every task declared in `task_packages` (each
    module of those packages is imported) and the engine's own tasks registered.

    Pass the host's SQLAlchemy `engine` to share its pool; without it the engine opens
    its own from DATABASE_URL. The app becomes this process's engine: jobs enqueued after
    a commit are published through it.
    """
    _import_task_modules(task_packages)
    importlib.import_module("durable_jobs._maintenance")
    handles = declared_tasks()
    queues = broker.queue_names(settings, (h.policy.queue_for(settings) for h in handles))

    celery = Celery("durable_jobs", task_cls="durable_jobs._task:DurableTask")
    celery.conf.update(build_celery_config(settings, queues))
    celery.conf.include = WORKER_MODULES
    celery.steps["worker"].update(_WORKER_STEPS)
    celery.steps["consumer"].update(_CONSUMER_STEPS)
    database = Database(engine) if engine is not None else Database.from_url(settings.database_url)
    tracer = build_tracer(settings)
    publisher = BackgroundPublisher(celery, database, tracer)
    _runtime.install(_runtime.Runtime(settings, database, celery, publisher, tracer))
    for handle in handles:
        register(celery, settings, handle)
    return celery


def discard_celery(celery: Celery) -> None:
    """Forget an engine built by `create_celery` (a test's, with other settings): the one
    built before it is the process's again."""
    _runtime.uninstall(celery)


def _import_task_modules(packages: Iterable[str]) -> None:
    """Every module of each package: a new task module needs no list kept by hand."""
    for name in packages:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(getattr(package, "__path__", []), f"{name}."):
            importlib.import_module(module.name)


def build_celery_config(settings: JobsSettings, queues: list[str] | None = None) -> dict[str, Any]:
    visibility_timeout = settings.effective_visibility_timeout
    amqp = settings.broker_is_amqp
    queue_names = queues or [settings.task_default_queue]
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "result_backend": settings.result_backend,
        # JSON only: pickle would let anyone who can write to the broker run code.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # Named queues only; a typo in a queue name is an error, not a new queue.
        "task_queues": broker.task_queues(settings, queue_names),
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
            broker.amqp_transport_options(settings)
            if amqp
            else broker.redis_transport_options(settings)
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
        "timezone": "UTC",
    }
    if amqp:
        config.update(AMQP_ONLY_CONFIG)
    # TLS where the URLs ask for it (rediss://, amqps://), with the settings' CA file.
    use_ssl = tls.broker_use_ssl(settings)
    if use_ssl is not None:
        config["broker_use_ssl"] = use_ssl
    if settings.result_backend is not None and settings.result_backend.startswith("rediss://"):
        config["redis_backend_use_ssl"] = tls.redis_tls_options(settings)
    return config
