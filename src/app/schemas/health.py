from typing import Literal

from pydantic import BaseModel


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class DependencyStatus(BaseModel):
    ok: bool
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    database: DependencyStatus
    broker: DependencyStatus


class WorkerStatus(BaseModel):
    name: str
    active_tasks: int
    processed: int
    concurrency: int | None = None


class WorkersHealth(BaseModel):
    status: Literal["ok", "unavailable"]
    workers: list[WorkerStatus]
    error: str | None = None
