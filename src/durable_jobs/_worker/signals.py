"""The worker's and beat's signal handlers, and the kombu fix they need."""

import logging
from typing import Any

from celery.signals import (
    beat_init,
    task_unknown,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
)

from durable_jobs import _ledger as ledger
from durable_jobs import _metrics as metrics
from durable_jobs._db import libpq_dsn
from durable_jobs._models import JobState
from durable_jobs._runtime import current, transaction
from durable_jobs._task import as_job_id
from durable_jobs._tracing import flush
from durable_jobs._worker import broker_fixes, metrics_endpoint
from durable_jobs._worker.beat_guard import BeatAlreadyRunning, hold_beat_lock

logger = logging.getLogger(__name__)

broker_fixes.apply()


@beat_init.connect
def _be_the_only_beat(**_: Any) -> None:
    try:
        hold_beat_lock(libpq_dsn(current().settings.database_url))
    except BeatAlreadyRunning as exc:
        logger.critical("Beat not started: %s", exc)
        # SystemExit, not an Exception: Celery logs and swallows what a handler raises.
        raise SystemExit(1) from exc


@worker_init.connect
def _count_in_a_directory_of_this_workers(**_: Any) -> None:
    """Before the pool forks, so that its processes count where the endpoint reads."""
    if current().settings.worker_metrics_port:
        metrics_endpoint.use_own_directory()


@worker_process_init.connect
def _drop_inherited_connections(**_: Any) -> None:
    """A forked pool process must not share the parent's database sockets."""
    current().database.engine.dispose(close=False)


@worker_process_shutdown.connect
def _export_buffered_spans(**_: Any) -> None:
    if current().tracer is not None:
        flush()


@task_unknown.connect
def _fail_jobs_of_unknown_tasks(name: str, id: str, **_: Any) -> None:  # noqa: A002
    """Celery drops a message whose task it does not know; the ledger says so too."""
    job_id = as_job_id(id)
    if job_id is None:
        return
    with transaction() as session:
        failed = ledger.mark_unrunnable(session, job_id, f"no worker knows the task {name!r}")
    if failed:
        metrics.job_finished(name, JobState.FAILED)
