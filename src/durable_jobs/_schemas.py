"""What the jobs API answers: a job as its ledger row shows it, and a page of them."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import AliasPath, BaseModel, ConfigDict, Field

from durable_jobs._models import JobState


class JobProgressRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    done: int
    total: int | None
    note: str | None
    updated_at: datetime


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    task_name: str
    arguments: dict[str, Any] = Field(validation_alias=AliasPath("kwargs"))
    queue: str
    state: JobState
    attempts: int
    max_attempts: int
    worker_losses: int
    # Attempts cut short by the database or the broker going away (not the task's failures).
    infra_retries: int
    last_error: str | None
    worker: str | None
    request_id: str | None
    created_at: datetime
    published_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None
    # Set when a cancel was asked for; a started job shows it until its worker stops it.
    cancel_requested_at: datetime | None
    progress: JobProgressRead | None
    result: Any = Field(description="The task's JSON return value, once it succeeded")


class JobStatus(BaseModel):
    """What a job's status URL shows its holder: the state, progress and result only."""

    model_config = ConfigDict(from_attributes=True)

    state: JobState
    progress: JobProgressRead | None
    result: Any = Field(description="The task's JSON return value, once it succeeded")


class JobPage(BaseModel):
    items: list[JobRead]
    next_cursor: str | None
