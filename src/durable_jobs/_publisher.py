"""Hands committed jobs to the broker, never on the request's critical path.

Jobs are queued in memory for one background thread; whatever it cannot publish
(broker down, frozen, queue full) stays in the outbox for the relay.
"""

import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from amqp.exceptions import MessageNacked
from celery import Celery
from kombu.exceptions import OperationalError
from opentelemetry.trace import SpanKind, Tracer

from durable_jobs import _ledger as ledger
from durable_jobs._broker import broker_priority
from durable_jobs._db import Database
from durable_jobs._message import JobMessage
from durable_jobs._models import JobState
from durable_jobs._settings import AMQP_SCHEMES
from durable_jobs._tracing import job_step_span

logger = logging.getLogger(__name__)

# MessageNacked: RabbitMQ confirmed that it refused the message (a full queue, a
# quorum queue without a leader); the relay publishes it again later.
PUBLISH_ERRORS = (OperationalError, ConnectionError, OSError, TimeoutError, MessageNacked)
BACKLOG_LIMIT = 10_000
BATCH_LIMIT = 200
PAUSE_AFTER_FAILURE_SECONDS = 5.0
# Published jobs are recorded as such in one transaction per this many seconds, not
# one per job; until then the relay leaves them alone (RELAY_MIN_AGE_SECONDS).
MARK_INTERVAL_SECONDS = 0.1


def publish(
    celery_app: Celery, messages: Iterable[JobMessage], tracer: Tracer | None = None
) -> list[JobMessage]:
    """Publish each message with the bounded retry policy; return those the broker took.

    Stops at the first failure: with the broker gone the rest would fail too.
    """
    published: list[JobMessage] = []
    amqp = str(celery_app.conf.broker_url).startswith(AMQP_SCHEMES)
    with celery_app.producer_or_acquire() as producer:
        for message in messages:
            priority = broker_priority(message.priority, amqp=amqp)
            try:
                if tracer is None or message.traceparent is None:
                    _send(celery_app, producer, message, priority)
                else:
                    with job_step_span(
                        tracer,
                        f"publish {message.task_name}",
                        SpanKind.PRODUCER,
                        message.traceparent,
                        {"job.id": message.job_id, "messaging.destination.name": message.queue},
                    ):
                        _send(celery_app, producer, message, priority)
            except PUBLISH_ERRORS as exc:
                logger.warning(
                    "Publishing job %s failed, the relay will retry: %s",
                    message.job_id,
                    exc or type(exc).__name__,
                )
                break
            published.append(message)
    return published


def _send(celery_app: Celery, producer: Any, message: JobMessage, priority: int | None) -> None:
    celery_app.send_task(
        message.task_name,
        kwargs=message.kwargs,
        task_id=message.job_id,
        queue=message.queue,
        retries=message.retries,
        producer=producer,
        priority=priority,
    )


class BackgroundPublisher:
    """One daemon thread per process that publishes jobs just after their commit."""

    def __init__(
        self, celery_app: Celery, database: Database, tracer: Tracer | None = None
    ) -> None:
        self._celery_app = celery_app
        self._database = database
        self._tracer = tracer
        self._pending: queue.Queue[JobMessage] = queue.Queue(maxsize=BACKLOG_LIMIT)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._paused_until = 0.0

    def submit(self, messages: Iterable[JobMessage]) -> None:
        self._ensure_thread()
        for message in messages:
            try:
                self._pending.put_nowait(message)
            except queue.Full:
                logger.warning("Publish backlog full; job %s waits for the relay", message.job_id)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until everything submitted so far was handled (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while self._pending.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._pending.unfinished_tasks

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="job-publisher", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        unmarked: list[uuid.UUID] = []
        mark_at = 0.0
        while True:
            wait = max(0.0, mark_at - time.monotonic()) if unmarked else None
            batch = self._next_batch(wait)
            try:
                published = self._publish_batch(batch)
                if published and not unmarked:
                    mark_at = time.monotonic() + MARK_INTERVAL_SECONDS
                unmarked += published
                if unmarked and (time.monotonic() >= mark_at or len(unmarked) >= BATCH_LIMIT):
                    with self._database.transaction() as session:
                        # Queued only: a job that ran and is back in the outbox for a
                        # retry since (retrying, published_at NULL) is the relay's to send.
                        ledger.mark_published(session, unmarked, (JobState.QUEUED,))
                    unmarked = []
            except Exception:
                logger.exception("Publishing %d jobs failed; the relay will retry", len(batch))
                unmarked = []
            finally:
                for _ in batch:
                    self._pending.task_done()

    def _next_batch(self, wait: float | None) -> list[JobMessage]:
        """Up to BATCH_LIMIT pending jobs; empty if none came within `wait` seconds."""
        try:
            batch = [self._pending.get(timeout=wait)]
        except queue.Empty:
            return []
        while len(batch) < BATCH_LIMIT:
            try:
                batch.append(self._pending.get_nowait())
            except queue.Empty:
                break
        return batch

    def _publish_batch(self, batch: list[JobMessage]) -> list[uuid.UUID]:
        if not batch or time.monotonic() < self._paused_until:
            return []
        published = publish(self._celery_app, batch, self._tracer)
        if len(published) < len(batch):
            self._paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
        return [uuid.UUID(message.job_id) for message in published]
