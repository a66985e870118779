"""The application's Celery app plus the benchmark's no-op tasks.

Bench workers run `celery -A bench.tasks worker`; the application never sees these.
Each task notes that it ran (a counter in Redis) and, given `sent_at`, how long after
that moment it started, so the producer can measure throughput and latency.
"""

import os
import time

import redis
from celery import Task

from app.core.config import get_settings
from app.worker import celery_app
from durable_jobs import task

settings = get_settings()

__all__ = [
    "DONE_KEY",
    "STARTS_KEY",
    "celery_app",
    "noop",
    "noop_concurrency_limited",
    "noop_plain",
    "noop_rate_limited",
]

NOOP_PLAIN_NAME = "bench.noop_plain"
DONE_KEY = f"bench:{settings.task_default_queue}:done"
STARTS_KEY = f"bench:{settings.task_default_queue}:starts"

_client: tuple[int, "redis.Redis[bytes]"] | None = None


def bench_redis() -> "redis.Redis[bytes]":
    """One client per process (pool children are forked from the worker)."""
    global _client
    if _client is None or _client[0] != os.getpid():
        url = os.environ.get("BENCH_REDIS_URL", settings.broker_url)
        _client = (os.getpid(), redis.Redis.from_url(url))
    return _client[1]


def _record(sent_at: float | None) -> None:
    started = time.time()
    pipe = bench_redis().pipeline(transaction=False)
    pipe.incr(DONE_KEY)
    if sent_at is not None:
        pipe.rpush(STARTS_KEY, f"{started - sent_at:.6f}")
    pipe.execute()


@task("bench.noop")
def noop(sent_at: float | None = None) -> None:
    """Runs through `DurableTask` (the app's default task class)."""
    _record(sent_at)


# Limits the bench never reaches (a worker -c 2 runs 2 at once, a few hundred per
# second): what they cost is the limited claim itself.
@task("bench.noop_concurrency_limited", concurrency=100)
def noop_concurrency_limited(sent_at: float | None = None) -> None:
    _record(sent_at)


@task("bench.noop_rate_limited", rate="1000/s")
def noop_rate_limited(sent_at: float | None = None) -> None:
    _record(sent_at)


@celery_app.task(name=NOOP_PLAIN_NAME, base=Task)
def noop_plain(sent_at: float | None = None) -> None:
    """Plain `celery.Task`: no ledger lookup at all, the raw Celery baseline."""
    _record(sent_at)
