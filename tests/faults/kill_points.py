"""Deterministic kill points: the `executions` table says which process runs which job."""

import os
import random
import signal
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, text

from tests.support.runner import wait_until


@dataclass(frozen=True)
class Running:
    job_id: uuid.UUID
    pid: int


def running_execution(engine: Engine, spared: set[uuid.UUID]) -> Running | None:
    """The newest execution whose job has no effect yet, among jobs not in `spared`."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT x.job_id, x.pid FROM executions x "
                "WHERE NOT EXISTS (SELECT 1 FROM effects e WHERE e.job_id = x.job_id) "
                "ORDER BY x.id DESC LIMIT 10"
            )
        ).all()
    for job_id, pid in rows:
        if job_id not in spared:
            return Running(job_id, pid)
    return None


def wait_for_running(engine: Engine, spared: set[uuid.UUID], timeout: float) -> Running:
    found: list[Running] = []

    def seen() -> bool:
        running = running_execution(engine, spared)
        if running is not None:
            found.append(running)
        return running is not None

    wait_until(seen, timeout, interval=0.05, what="a running job to kill")
    return found[-1]


def executions_of(engine: Engine, job_id: uuid.UUID) -> int:
    with engine.connect() as connection:
        return int(
            connection.scalar(
                text("SELECT count(*) FROM executions WHERE job_id = :id"), {"id": job_id}
            )
        )


def time_to_next_execution(
    engine: Engine, job_id: uuid.UUID, since: float, before: int, timeout: float
) -> float:
    """Seconds from `since` until the job has more than `before` executions."""
    wait_until(
        lambda: executions_of(engine, job_id) > before,
        timeout,
        interval=0.05,
        what=f"job {job_id} to run again",
    )
    return time.monotonic() - since


def has_effect(engine: Engine, job_id: uuid.UUID) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.scalar(
                text("SELECT count(*) FROM effects WHERE job_id = :id"), {"id": job_id}
            )
        )


def kill_mid_task(engine: Engine, spared: set[uuid.UUID], max_offset: float) -> Running:
    """SIGKILL the process of a running job, a random moment into its run; a job
    that finished during that moment is passed over for the next one."""
    while True:
        running = wait_for_running(engine, spared, timeout=30)
        time.sleep(random.uniform(0, max_offset))
        if not has_effect(engine, running.job_id):
            os.kill(running.pid, signal.SIGKILL)
            return running
        spared = spared | {running.job_id}


def redelivery_delays(engine: Engine, kills: dict[uuid.UUID, float]) -> list[float]:
    """Seconds from each kill (wall clock) to the next execution of the killed job."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT job_id, extract(epoch FROM started_at) FROM executions "
                "WHERE job_id = ANY(:ids) ORDER BY started_at"
            ),
            {"ids": list(kills)},
        ).all()
    delays: dict[uuid.UUID, float] = {}
    for job_id, started in rows:
        if float(started) > kills[job_id] and job_id not in delays:
            delays[job_id] = float(started) - kills[job_id]
    assert len(delays) == len(kills), "every killed job ran again"
    return sorted(delays.values())
