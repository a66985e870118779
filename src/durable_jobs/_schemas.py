"""What the jobs API answers: a job as its ledger row shows it, and a page of them."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import AliasPath, BaseModel, ConfigDict, Field

from durable_jobs._models import JobState


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


class JobPage(BaseModel):
    items: list[JobRead]
    next_cursor: str | None
