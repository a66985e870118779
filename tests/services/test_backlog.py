"""The backlog read from the real ledger, and the per-process cache in front of it."""

import time

from app.services.backlog import BacklogGauge, read_backlog
from durable_jobs import JobState
from tests.support.ledger_rows import insert_job

TASK = "users.send_welcome_email"


def test_the_backlog_is_queued_jobs_plus_the_rest_of_the_outbox() -> None:
    insert_job(TASK, JobState.QUEUED)
    insert_job(TASK, JobState.QUEUED, published=False)
    insert_job(TASK, JobState.RETRYING, published=False)
    insert_job(TASK, JobState.STARTED, published=False)
    # Not waiting for a worker: published retries and running, finished or cancelled jobs.
    insert_job(TASK, JobState.RETRYING)
    insert_job(TASK, JobState.STARTED, wait=0.1)
    insert_job(TASK, JobState.SUCCEEDED, wait=0.1, run=0.1)
    insert_job(TASK, JobState.FAILED, wait=0.1, run=0.1)
    insert_job(TASK, JobState.CANCELLED)

    assert read_backlog() == 4


def test_the_gauge_reads_the_ledger_at_most_once_per_max_age() -> None:
    reads: list[int] = []

    def counted_read() -> int:
        reads.append(read_backlog())
        return reads[-1]

    gauge = BacklogGauge(max_age_seconds=0.3, read=counted_read)
    assert gauge.current() == 0
    insert_job(TASK, JobState.QUEUED)

    assert [gauge.current() for _ in range(50)] == [0] * 50
    assert len(reads) == 1

    time.sleep(0.3)
    assert gauge.current() == 1
    assert len(reads) == 2


def test_jobs_let_in_count_until_the_next_read() -> None:
    gauge = BacklogGauge(max_age_seconds=0.3)
    assert gauge.current() == 0

    gauge.count_admitted()
    gauge.count_admitted()
    assert gauge.current() == 2

    time.sleep(0.3)
    assert gauge.current() == 0  # the ledger's answer replaces the estimate
