from typing import Literal

from pydantic import BaseModel

from durable_jobs import WorkerState


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
    # ok; disconnected: alive but cut off from the broker; stuck: its event loop stalled
    # or a job outlived the hard time limit; lost: no heartbeat for a while.
    state: WorkerState
    active_jobs: int
    processed: int
    concurrency: int | None = None
    stuck_jobs: int | None = None
    broker_connected: bool | None = None
    # None when the report comes from the broker (the ledger did not answer).
    last_heartbeat_age_seconds: float | None = None


class WorkersHealth(BaseModel):
    # ok: every worker is ok; degraded: some are; unavailable: none is (503).
    status: Literal["ok", "degraded", "unavailable"]
    source: Literal["heartbeats", "broker"]
    workers: list[WorkerStatus]
    error: str | None = None
