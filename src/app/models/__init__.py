"""Every table of the service, imported here so Alembic and the app see them all."""

from app.models.idempotency import IdempotencyKey
from app.models.job import Job, JobState
from app.models.user import User
from app.models.worker_heartbeat import WorkerHeartbeat

__all__ = ["IdempotencyKey", "Job", "JobState", "User", "WorkerHeartbeat"]
