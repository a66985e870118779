"""Scheduled jobs wait in the ledger, so a restart of the broker or of PostgreSQL while
they wait, or while they fall due, loses none, runs none early and repeats no effect."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app.core.db import engine
from durable_jobs import _ledger as ledger
from tests.faults.checker import drain
from tests.faults.figures import report
from tests.faults.stack import Stack
from tests.support.fault_worker import record
from tests.support.servers import PrivateBroker, PrivatePostgres
from tests.support.settings import settings

pytestmark = [pytest.mark.faults, pytest.mark.slow]

JOBS = 30
# The jobs fall due over this window, which the outage overlaps.
FIRST_DUE_SECONDS = 2.0
WINDOW_SECONDS = 8.0
OUTAGE_SECONDS = 4.0


def schedule_jobs(database: Engine) -> dict[str, datetime]:
    """Commit JOBS scheduled jobs of the recording task; return each key's time."""
    first = datetime.now(UTC) + timedelta(seconds=FIRST_DUE_SECONDS)
    times = {
        f"scheduled-{index}-{time.monotonic_ns()}": first
        + timedelta(seconds=index * WINDOW_SECONDS / JOBS)
        for index in range(JOBS)
    }
    with Session(database) as session, session.begin():
        for key, run_at in times.items():
            ledger.add_job(session, settings, record.policy, {"key": key}, due_at=run_at)
    return times


def assert_each_ran_once_at_or_after_its_time(
    database: Engine, times: dict[str, datetime]
) -> tuple[float, int]:
    """Every job succeeded, its effect done once and never before its time. Returns the
    latest lateness and how many attempts were cut short (the database went away under
    them) and run again: those are recorded in the ledger, and their effect not repeated."""
    with database.connect() as connection:
        jobs = {
            row.key: row
            for row in connection.execute(
                text(
                    "SELECT kwargs->>'key' AS key, state, attempts, infra_retries FROM jobs "
                    "WHERE task_name = 'faults.record'"
                )
            )
        }
        effects = {
            row.key: row
            for row in connection.execute(
                text("SELECT key, done_at, repeats FROM effects WHERE key LIKE 'scheduled-%'")
            )
        }
    assert set(jobs) == set(times)
    assert {job.state for job in jobs.values()} == {"succeeded"}, jobs
    assert set(effects) == set(times)
    assert all(effect.repeats == 0 for effect in effects.values()), effects
    assert all(effects[key].done_at >= times[key] for key in times)
    rerun = [job for job in jobs.values() if job.attempts > 1]
    assert all(job.infra_retries > 0 for job in rerun), rerun
    latest = max((effects[key].done_at - times[key]).total_seconds() for key in times)
    return latest, len(rerun)


def test_scheduled_jobs_survive_a_broker_restart(
    stack: Stack, broker_server: PrivateBroker
) -> None:
    stack.start_worker(concurrency=2)
    times = schedule_jobs(engine)

    time.sleep(FIRST_DUE_SECONDS + 1)  # a few are published, the rest wait in the ledger
    broker_server.stop()
    time.sleep(OUTAGE_SECONDS)  # more fall due while the broker is down
    broker_server.start()
    drain(engine, timeout=120)

    latest, rerun = assert_each_ran_once_at_or_after_its_time(engine, times)
    report("scheduled jobs, broker restarted", jobs=JOBS, latest=f"{latest:.1f}s", rerun=rerun)


def test_scheduled_jobs_survive_a_postgres_restart(
    postgres_stack: Stack, postgres: PrivatePostgres, postgres_engine: Engine
) -> None:
    postgres_stack.start_worker(concurrency=2)
    times = schedule_jobs(postgres_engine)

    time.sleep(FIRST_DUE_SECONDS + 1)
    postgres.stop("fast")
    time.sleep(OUTAGE_SECONDS)
    postgres.start()
    postgres_engine.dispose()  # the test's own pooled connections died with the server
    drain(postgres_engine, timeout=120)

    latest, rerun = assert_each_ran_once_at_or_after_its_time(postgres_engine, times)
    report("scheduled jobs, PostgreSQL restarted", jobs=JOBS, latest=f"{latest:.1f}s", rerun=rerun)
