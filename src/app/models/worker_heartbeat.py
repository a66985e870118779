from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class WorkerHeartbeat(Base):
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
