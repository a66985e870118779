"""The job ledger's tables: one row per job, one row per live worker."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, DateTime, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
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
    worker: Mapped[str | None] = mapped_column(String(255))
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
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
