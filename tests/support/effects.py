"""The fault tests' record of what workers really did, kept beside the ledger.

`executions` gets one row per attempt that got past the ledger's claim, written in
autocommit before the work starts, so a kill mid-task leaves it behind. `effects`
gets one row per job at the end of the work; its UNIQUE job id is the idempotent
side effect the checker counts (a second insert for a job only bumps `repeats`).
These tables are test-only: the application's migrations never create them.
"""

import os
import uuid

from sqlalchemy import Connection, text

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id bigserial PRIMARY KEY,
    job_id uuid NOT NULL,
    key text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS effects (
    job_id uuid NOT NULL UNIQUE,
    key text NOT NULL,
    pid integer NOT NULL,
    repeats integer NOT NULL DEFAULT 0,
    done_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""


def create_tables(connection: Connection) -> None:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            connection.execute(text(statement))


def record_execution(connection: Connection, job_id: uuid.UUID, key: str) -> None:
    connection.execute(
        text("INSERT INTO executions (job_id, key, pid) VALUES (:job_id, :key, :pid)"),
        {"job_id": job_id, "key": key, "pid": os.getpid()},
    )


def record_effect(
    connection: Connection, job_id: uuid.UUID, key: str, *, again: bool = True
) -> None:
    """The job's effect happened; `again=False` notes an effect done by an earlier
    attempt (whose record a crash may have cut off) without counting a repeat."""
    on_conflict = "DO UPDATE SET repeats = effects.repeats + 1" if again else "DO NOTHING"
    connection.execute(
        text(
            "INSERT INTO effects (job_id, key, pid) VALUES (:job_id, :key, :pid) "
            f"ON CONFLICT (job_id) {on_conflict}"
        ),
        {"job_id": job_id, "key": key, "pid": os.getpid()},
    )
