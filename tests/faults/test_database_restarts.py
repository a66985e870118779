"""PostgreSQL restarted, killed -9 or frozen while tasks are mid-transaction (T21).

An attempt whose database connection went away is not the task's failure: every
job the API accepted ends succeeded, its effect once, whatever the task's own
retry policy (the welcome email retries only ConnectionError).
"""

import time
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from durable_jobs import FINISHED_STATES, Job, JobState
from durable_jobs import _ledger as ledger
from tests.faults.checker import check, drain
from tests.faults.figures import add_row
from tests.faults.load import SignUpLoad
from tests.faults.stack import Stack
from tests.support.fault_worker import record
from tests.support.runner import wait_until
from tests.support.servers import PrivatePostgres
from tests.support.settings import settings
from tests.support.stats import p99

pytestmark = [pytest.mark.faults, pytest.mark.slow]

FREEZE_SECONDS = 5


def restart(postgres: PrivatePostgres) -> None:
    postgres.stop("fast")  # what `docker compose restart` does: sessions are terminated
    postgres.start()


def kill_and_start(postgres: PrivatePostgres) -> None:
    postgres.kill()
    postgres.start()


def freeze(postgres: PrivatePostgres) -> None:
    postgres.freeze()
    time.sleep(FREEZE_SECONDS)
    postgres.thaw()


FAULTS: dict[str, Callable[[PrivatePostgres], None]] = {
    "restarted": restart,
    "killed -9": kill_and_start,
    f"frozen {FREEZE_SECONDS} s": freeze,
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_t21_database_fault_under_running_tasks(
    postgres_stack: Stack, postgres: PrivatePostgres, postgres_engine: Engine, fault: str
) -> None:
    stack = postgres_stack
    # Each welcome email holds its transaction (and the user's row lock) for 1.5 s, longer
    # than the restart: the fault finds several mid-transaction, and they go on once the
    # database is back, on connections it has closed.
    for _ in range(2):
        stack.start_worker(concurrency=3, email_send_seconds="1.5")
    history = stack.history()
    with SignUpLoad(stack, history, rate=4):
        time.sleep(3)
        started = time.monotonic()
        FAULTS[fault](postgres)
        fault_seconds = time.monotonic() - started
        time.sleep(4)
    drained = drain(postgres_engine, timeout=180)

    verdict = check(postgres_engine, history)
    verdict.assert_safe()
    assert not verdict.unexpected
    with postgres_engine.connect() as connection:
        not_succeeded = connection.execute(
            text("SELECT id, state, last_error FROM jobs WHERE state <> :succeeded"),
            {"succeeded": JobState.SUCCEEDED},
        ).all()
        cut_short = connection.scalar(text("SELECT count(*) FROM jobs WHERE infra_retries > 0"))
    assert not not_succeeded, f"jobs that did not succeed: {not_succeeded}"
    add_row(
        f"T21 PostgreSQL {fault} under running tasks",
        verdict,
        api_p99=p99(history.latencies(started, started + fault_seconds)),
        drain=drained,
        notes=f"{cut_short} attempts cut short and run again; every job succeeded",
    )


@pytest.mark.parametrize("outage_seconds", [2, 5])
def test_an_effect_done_is_never_recorded_failed(
    postgres_stack: Stack, postgres: PrivatePostgres, postgres_engine: Engine, outage_seconds: int
) -> None:
    """The effect commits, then the database goes away before the outcome is written.
    A short outage: the write is tried again and lands. A longer one than
    JOB_LEDGER_RETRY_SECONDS: the job stays started for the lease takeover. Never failed."""
    postgres_stack.start_worker(concurrency=1, job_ledger_retry_seconds="3")
    with Session(postgres_engine) as session, session.begin():
        job_id = ledger.add_job(
            session, settings, record.policy, {"key": "outcome", "linger": 1.0}
        ).id

    def effect_done() -> bool:
        with postgres_engine.connect() as connection:
            return bool(
                connection.scalar(text("SELECT count(*) FROM effects WHERE key = 'outcome'"))
            )

    wait_until(effect_done, 20, interval=0.05, what="the effect")
    postgres.stop("fast")
    time.sleep(outage_seconds)
    postgres.start()
    postgres_engine.dispose()  # the test's own pooled connections died with the server

    def finished() -> Job | None:
        with Session(postgres_engine) as session:
            job = session.get(Job, job_id)
            return job if job is not None and job.state in FINISHED_STATES else None

    wait_until(lambda: finished() is not None, 60, interval=0.2, what="the job to finish")
    job = finished()
    assert job is not None and job.state == JobState.SUCCEEDED, job and job.last_error
    # Within the retry window the outcome of the first attempt lands; past it the lease
    # takeover runs the job again.
    assert job.attempts == (1 if outage_seconds < 3 else 2), postgres_stack.worker_logs()[-6000:]
