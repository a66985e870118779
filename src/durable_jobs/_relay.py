"""The relay: publishes what the outbox still holds, each scheduled job and retry once it
is due, enqueues the ticks of periodic schedules, and re-queues abandoned jobs.

Run it with `run_relay`; several relays may run side by side, as
rows are claimed with FOR UPDATE SKIP LOCKED.
"""

import logging
import signal
import threading
import time
import uuid
from types import FrameType

from durable_jobs import _ledger as ledger
from durable_jobs._message import JobMessage
from durable_jobs._publisher import publish
from durable_jobs._runtime import current, transaction
from durable_jobs._schedules import (
    define_maintenance_schedules,
    seconds_until_next_tick,
    tick_schedules,
)

logger = logging.getLogger(__name__)


def relay_pending_jobs(min_age_seconds: float | None = None) -> int:
    """Publish one batch of unpublished jobs; return how many the broker took.

    The rows stay locked while they are published, so a crash before the commit
    leaves them unpublished and a later pass sends them again (at least once).
    """
    settings = current().settings
    if min_age_seconds is None:
        min_age_seconds = settings.relay_min_age_seconds
    with transaction() as session:
        jobs = ledger.lock_unpublished(session, settings.relay_batch_size, min_age_seconds)
        if not jobs:
            return 0
        runtime = current()
        published = publish(runtime.celery, [JobMessage.of(job) for job in jobs], runtime.tracer)
        if published:
            ids = [uuid.UUID(m.job_id) for m in published]
            ledger.mark_published(session, ids, held_too=True)
    if published:
        logger.info("Relayed %d of %d unpublished jobs", len(published), len(jobs))
    return len(published)


def requeue_abandoned_jobs() -> int:
    with transaction() as session:
        count = ledger.requeue_abandoned(session)
    if count:
        logger.warning("Re-queued %d jobs whose worker or message was lost", count)
    return count


def seconds_until_next_due() -> float | None:
    with transaction() as session:
        return ledger.seconds_until_next_due(session)


def run_forever(stop: threading.Event) -> None:
    settings = current().settings
    interval = settings.relay_interval_seconds
    logger.info("Relay started (every %.1fs, batches of %d)", interval, settings.relay_batch_size)
    sweep_at = 0.0
    while not stop.is_set():
        wait = interval
        try:
            if time.monotonic() >= sweep_at:
                requeue_abandoned_jobs()
                sweep_at = time.monotonic() + interval
            tick_schedules()
            while relay_pending_jobs() == settings.relay_batch_size and not stop.is_set():
                pass
            # Wake when the next scheduled job, retry or tick falls due, not an interval on.
            for due_in in (seconds_until_next_due(), seconds_until_next_tick()):
                if due_in is not None:
                    wait = min(wait, due_in)
        except Exception:
            logger.exception("Relay pass failed; trying again")
        stop.wait(wait)
    logger.info("Relay stopped")


def run_relay() -> None:
    """Run the relay in this process until SIGTERM or SIGINT; build the engine first.

    It defines the engine's own periodic schedules (the pruner, the reaper) as it starts."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("Relay got signal %d, finishing its pass", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    define_maintenance_schedules()
    run_forever(stop)
