"""Background jobs for FastAPI and Celery that are never lost.

A job is a row of the ledger written in the caller's transaction (the outbox), published
after the commit or by the relay, claimed by the worker before it runs, and its outcome
recorded under that claim. This module is the whole public API; every other module is
private.
"""

from pathlib import Path

from durable_jobs._api import JOB_STATUS_ROUTE, job_status_router, jobs_router, ledger_page_router
from durable_jobs._broker import dead_letter_queue_name
from durable_jobs._celery import create_celery, discard_celery
from durable_jobs._context import job_id_var, request_id_var
from durable_jobs._declare import DurableTaskHandle, EnqueueWith, FromSettings, TaskPolicy, task
from durable_jobs._health import WorkerReport, WorkerState, worker_reports
from durable_jobs._inspection import BrokerUnavailable, WorkerInfo, connected_workers, ping_broker
from durable_jobs._metrics import JobsCollector
from durable_jobs._models import FINISHED_STATES, Job, JobState, LedgerBase, WorkerHeartbeat
from durable_jobs._progress import JobCancelled, report_progress
from durable_jobs._relay import relay_pending_jobs, requeue_abandoned_jobs, run_relay
from durable_jobs._runtime import current as _current
from durable_jobs._schedules import (
    CatchUp,
    InvalidSchedule,
    Schedule,
    ScheduleNotFound,
    ScheduleTick,
    define_schedule,
    delete_schedule,
    get_schedule,
    list_schedules,
    pause_schedule,
    resume_schedule,
    tick_schedules,
)
from durable_jobs._schemas import JobPage, JobProgressRead, JobRead, JobStatus
from durable_jobs._service import (
    InvalidCursor,
    JobNotFound,
    JobStateConflict,
    JobStatusNotFound,
    cancel_job,
    get_job,
    get_job_status,
    grant_status_token,
    list_jobs,
    retry_job,
)
from durable_jobs._settings import JobsSettings
from durable_jobs._task import DurableTask
from durable_jobs._tls import redis_client_options
from durable_jobs._unique import UNIQUE_KEY_MAX_LENGTH

# Put this directory in the host's Alembic `version_locations`; its branch is "durable_jobs".
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations" / "versions"


def wait_for_publishing(timeout: float) -> bool:
    """Wait until every job committed so far in this process was handed to the broker
    (or left to the relay); for tests and orderly shutdown."""
    return _current().publisher.wait_idle(timeout)


__all__ = [
    "FINISHED_STATES",
    "JOB_STATUS_ROUTE",
    "MIGRATIONS_DIR",
    "UNIQUE_KEY_MAX_LENGTH",
    "BrokerUnavailable",
    "CatchUp",
    "DurableTask",
    "DurableTaskHandle",
    "EnqueueWith",
    "FromSettings",
    "InvalidCursor",
    "InvalidSchedule",
    "Job",
    "JobCancelled",
    "JobNotFound",
    "JobPage",
    "JobProgressRead",
    "JobRead",
    "JobState",
    "JobStateConflict",
    "JobStatus",
    "JobStatusNotFound",
    "JobsCollector",
    "JobsSettings",
    "LedgerBase",
    "Schedule",
    "ScheduleNotFound",
    "ScheduleTick",
    "TaskPolicy",
    "WorkerHeartbeat",
    "WorkerInfo",
    "WorkerReport",
    "WorkerState",
    "cancel_job",
    "connected_workers",
    "create_celery",
    "dead_letter_queue_name",
    "define_schedule",
    "delete_schedule",
    "discard_celery",
    "get_job",
    "get_job_status",
    "grant_status_token",
    "get_schedule",
    "job_id_var",
    "job_status_router",
    "jobs_router",
    "ledger_page_router",
    "list_jobs",
    "list_schedules",
    "pause_schedule",
    "ping_broker",
    "redis_client_options",
    "relay_pending_jobs",
    "report_progress",
    "request_id_var",
    "requeue_abandoned_jobs",
    "resume_schedule",
    "retry_job",
    "run_relay",
    "task",
    "tick_schedules",
    "wait_for_publishing",
    "worker_reports",
]
