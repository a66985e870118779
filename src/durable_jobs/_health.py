"""Each worker's state, judged from the heartbeats the workers write to the ledger."""

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text
from sqlalchemy.orm import Session

from durable_jobs._runtime import settings as _settings

WorkerState = Literal["ok", "disconnected", "stuck", "lost"]

STATEMENT_TIMEOUT_MS = 1500

_HEARTBEATS = text(
    """
    SELECT name, pid, concurrency, active_jobs, processed, stuck_jobs, broker_connected,
           loop_stalled, EXTRACT(EPOCH FROM now() - beat_at)::float8 AS age
    FROM worker_heartbeats
    WHERE beat_at > now() - make_interval(secs => :forget_after)
    ORDER BY name
    """
)


@dataclass(frozen=True)
class WorkerReport:
    name: str
    state: WorkerState
    active_jobs: int
    processed: int
    concurrency: int | None
    stuck_jobs: int
    broker_connected: bool
    last_heartbeat_age_seconds: float


def worker_reports(session: Session) -> list[WorkerReport]:
    session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
    rows = session.execute(
        _HEARTBEATS, {"forget_after": _settings().worker_forget_after_seconds}
    ).mappings()
    return [
        WorkerReport(
            name=row["name"],
            state=_state(
                row["age"], row["loop_stalled"], row["stuck_jobs"], row["broker_connected"]
            ),
            active_jobs=row["active_jobs"],
            processed=row["processed"],
            concurrency=row["concurrency"],
            stuck_jobs=row["stuck_jobs"],
            broker_connected=row["broker_connected"],
            last_heartbeat_age_seconds=round(max(row["age"], 0.0), 3),
        )
        for row in rows
    ]


def _state(age: float, loop_stalled: bool, stuck_jobs: int, broker_connected: bool) -> WorkerState:
    if age > _settings().worker_lost_after_seconds:
        return "lost"
    if loop_stalled or stuck_jobs:
        return "stuck"
    if not broker_connected:
        return "disconnected"
    return "ok"
