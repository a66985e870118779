"""The job ledger's tables: one row per job, one row per live worker."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, DateTime, Index, Integer, SmallInteger, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class LedgerBase(DeclarativeBase):
    """The engine's tables (jobs, worker_heartbeats); a host's Alembic env adds
    `LedgerBase.metadata` to its target metadata."""


class JobState(StrEnum):
    # Waiting in the ledger for its time (next_attempt_at); the relay publishes it then.
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    STARTED = "started"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


PROGRESS_NOTE_MAX_LENGTH = 200
STATUS_TOKEN_HASH_LENGTH = 64


@dataclass(frozen=True)
class JobProgress:
    """How far the running attempt says it is (`report_progress`)."""

    done: int
    total: int | None
    note: str | None
    updated_at: datetime


class Job(LedgerBase):
    """The ledger row of one background job; its id is also the Celery task id.

    A row with `published_at` NULL is in the outbox: committed but not yet handed
    to the broker. The relay publishes those.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_unpublished", "created_at", postgresql_where=text("published_at IS NULL")),
        Index(
            "ix_jobs_due",
            "next_attempt_at",
            postgresql_where=text("published_at IS NULL AND next_attempt_at IS NOT NULL"),
        ),
        Index("ix_jobs_state_created", "state", "created_at"),
        Index("ix_jobs_created", "created_at"),
        Index("ix_jobs_finished", "finished_at", postgresql_where=text("finished_at IS NOT NULL")),
        # Small (unfinished jobs only): the metrics count jobs by state and task from it.
        Index(
            "ix_jobs_unfinished",
            "state",
            "task_name",
            postgresql_where=text("state IN ('queued', 'retrying', 'started')"),
        ),
        Index(
            "ix_jobs_cancel_requested",
            "worker",
            postgresql_where=text("cancel_requested_at IS NOT NULL AND state = 'started'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    task_name: Mapped[str] = mapped_column(String(200))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    queue: Mapped[str] = mapped_column(String(100))
    state: Mapped[JobState] = mapped_column(String(20), default=JobState.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    worker_losses: Mapped[int] = mapped_column(Integer, default=0)
    # Retries used by the current run; Celery's retry budget is checked against it.
    retries: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts cut short because the database or the broker went away; a budget of
    # their own, apart from the task's retries.
    infra_retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    # The HTTP request that enqueued the job, so their logs can be joined.
    request_id: Mapped[str | None] = mapped_column(String(64))
    # The W3C traceparent of the enqueue when tracing is on: every publish and run of
    # the job, by whatever process, joins that trace.
    traceparent: Mapped[str | None] = mapped_column(String(128))
    worker: Mapped[str | None] = mapped_column(String(255))
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Why the job waits in the outbox past its task's limit (a LimitHold), or None.
    limit_hold: Mapped[str | None] = mapped_column(String(20))
    # 0-9, smaller first; None: the default, 0.
    priority: Mapped[int | None] = mapped_column(SmallInteger)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    # The task's JSON return value, once it succeeded (at most JOB_RESULT_MAX_BYTES).
    result: Mapped[Any | None] = mapped_column(JSONB(none_as_null=True))
    progress_done: Mapped[int | None] = mapped_column(Integer)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    progress_note: Mapped[str | None] = mapped_column(String(PROGRESS_NOTE_MAX_LENGTH))
    progress_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set by a cancel; a started job keeps running until its worker stops it, and a job
    # with this set never starts another attempt nor records success.
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # SHA-256 (hex) of the token of the job's status URL; the token itself is not kept.
    status_token_hash: Mapped[str | None] = mapped_column(String(STATUS_TOKEN_HASH_LENGTH))

    @property
    def progress(self) -> JobProgress | None:
        if self.progress_done is None or self.progress_at is None:
            return None
        return JobProgress(
            self.progress_done, self.progress_total, self.progress_note, self.progress_at
        )


class WorkerHeartbeat(LedgerBase):
    """The latest heartbeat of one Celery worker, upserted by the worker itself.

    Written from a thread of the worker's main process through PostgreSQL, never the
    broker, so the report still stands while the broker is down.
    """

    __tablename__ = "worker_heartbeats"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    beat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    active_jobs: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    # Jobs running past the worker's stuck threshold.
    stuck_jobs: Mapped[int] = mapped_column(Integer, default=0)
    broker_connected: Mapped[bool] = mapped_column(Boolean, default=False)
    loop_stalled: Mapped[bool] = mapped_column(Boolean, default=False)


class LimitHold(StrEnum):
    """What a job over its task's limit waits for."""

    CONCURRENCY = "concurrency"
    RATE = "rate"


# The limited claim counts a task's started jobs, and wakes its held ones, from these.
Index("ix_jobs_started_task", Job.task_name, postgresql_where=text("state = 'started'"))
Index(
    "ix_jobs_limit_hold",
    Job.task_name,
    Job.created_at,
    postgresql_where=text("limit_hold IS NOT NULL"),
)


class TaskLimitState(LedgerBase):
    """One row per limited task: locked by every claim of that task, so limits are counted
    one claim at a time across all workers, and the task's latest start times (its rate
    window)."""

    __tablename__ = "task_limits"

    task_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    # Ascending; at most the rate's count of them.
    starts: Mapped[list[datetime]] = mapped_column(
        ARRAY(DateTime(timezone=True)), server_default="{}"
    )
