"""Ledger rows written straight into PostgreSQL, with chosen timestamps."""

import uuid

from sqlalchemy import text

from app.core.db import transaction
from durable_jobs import JobState


def insert_job(
    task: str,
    state: JobState,
    *,
    created_ago: float = 0.0,
    wait: float | None = None,
    run: float | None = None,
    attempts: int = 1,
    retries: int = 0,
    published: bool = True,
    worker: str | None = None,
    queue: str = "default",
) -> uuid.UUID:
    """A job created `created_ago` seconds ago, started `wait` seconds after that and
    finished `run` seconds after its start (None: not started, or not finished)."""
    job_id = uuid.uuid4()
    with transaction() as session:
        session.execute(
            text(
                """
                INSERT INTO jobs (id, task_name, kwargs, queue, state, attempts, max_attempts,
                                  worker_losses, retries, worker, worker_pid, created_at,
                                  published_at, started_at, finished_at)
                SELECT :id, :task, '{}'::jsonb, :queue, :state, :attempts, 4, 0, :retries,
                       CAST(:worker AS varchar),
                       CASE WHEN CAST(:worker AS varchar) IS NULL THEN NULL ELSE 1 END, c,
                       CASE WHEN CAST(:published AS boolean) THEN c END,
                       c + make_interval(secs => CAST(:wait AS float8)),
                       c + make_interval(secs => CAST(:wait AS float8))
                         + make_interval(secs => CAST(:run AS float8))
                FROM (SELECT now() - make_interval(secs => CAST(:created_ago AS float8)) AS c) AS t
                """
            ),
            {
                "id": job_id,
                "task": task,
                "queue": queue,
                "state": state,
                "attempts": attempts,
                "retries": retries,
                "worker": worker,
                "created_ago": created_ago,
                "published": published,
                "wait": wait,
                "run": run,
            },
        )
    return job_id
