"""The ledger's guarded transitions: who may run a job, and what a late message may change."""

import os
import uuid
from datetime import timedelta

from sqlalchemy import func, update

from app.core.db import transaction
from app.tasks.example_tasks import send_welcome_email
from durable_jobs import Job, JobState
from durable_jobs import _ledger as ledger
from durable_jobs._ledger import ClaimRefusal, Holder
from durable_jobs._maintenance import prune_finished_jobs
from tests.support.ledger import job_row
from tests.support.settings import settings

HERE = Holder(node="w1@host", pid=os.getpid())
ELSEWHERE = Holder(node="w2@other", pid=1)


def never_gone(_: int) -> bool:
    return False


def always_gone(_: int) -> bool:
    return True


def new_job() -> uuid.UUID:
    with transaction() as session:
        return ledger.add_job(session, settings, send_welcome_email.policy, {"user_id": 1}).id


def claim(job_id: uuid.UUID, holder: Holder = HERE, gone=never_gone) -> ledger.Claim:  # type: ignore[no-untyped-def]
    with transaction() as session:
        return ledger.claim(session, job_id, holder, gone)


def expire_lease(job_id: uuid.UUID) -> None:
    with transaction() as session:
        session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=Job.started_at))


def test_a_queued_job_is_claimed_once() -> None:
    job_id = new_job()

    first = claim(job_id)
    second = claim(job_id, ELSEWHERE)

    assert first.attempt == 1
    assert second.refusal is ClaimRefusal.RUNNING_ELSEWHERE
    row = job_row(job_id)
    assert row is not None and row.state == JobState.STARTED and row.worker == HERE.node


def test_a_finished_job_is_never_run_again() -> None:
    job_id = new_job()
    attempt = claim(job_id).attempt
    assert attempt is not None
    with transaction() as session:
        assert ledger.mark_succeeded(session, job_id, attempt)

    again = claim(job_id)

    assert again.refusal is ClaimRefusal.FINISHED
    assert again.state is JobState.SUCCEEDED


def test_a_late_outcome_cannot_move_a_finished_job_backwards() -> None:
    job_id = new_job()
    attempt = claim(job_id).attempt
    assert attempt is not None
    with transaction() as session:
        assert ledger.mark_succeeded(session, job_id, attempt)
    with transaction() as session:
        assert not ledger.mark_failed(session, job_id, attempt, "late failure")
        assert not ledger.mark_retrying(session, job_id, attempt, "late retry", 1.0)

    row = job_row(job_id)
    assert row is not None and row.state == JobState.SUCCEEDED and row.last_error is None


def test_an_expired_lease_lets_another_worker_take_over() -> None:
    job_id = new_job()
    first = claim(job_id)
    expire_lease(job_id)

    second = claim(job_id, ELSEWHERE)

    assert (first.attempt, second.attempt) == (1, 2)
    row = job_row(job_id)
    assert row is not None and row.worker_losses == 1
    with transaction() as session:
        assert not ledger.mark_succeeded(session, job_id, 1), "the first attempt was superseded"
        assert ledger.mark_succeeded(session, job_id, 2)


def test_a_dead_process_of_the_same_node_is_taken_over_at_once() -> None:
    job_id = new_job()
    claim(job_id, Holder(node=HERE.node, pid=999_999))

    takeover = claim(job_id, HERE, always_gone)

    assert takeover.attempt == 2


def test_a_job_that_keeps_losing_its_worker_ends_failed() -> None:
    job_id = new_job()
    claim(job_id)
    for _ in range(settings.job_max_worker_losses - 1):
        expire_lease(job_id)
        assert claim(job_id).attempt is not None

    expire_lease(job_id)
    final = claim(job_id)

    assert final.refusal is ClaimRefusal.TOO_MANY_WORKER_LOSSES
    row = job_row(job_id)
    assert row is not None and row.state == JobState.FAILED
    assert row.last_error == f"worker lost {settings.job_max_worker_losses} times while running it"


def test_an_unknown_task_id_is_untracked() -> None:
    assert claim(uuid.uuid4()).refusal is ClaimRefusal.UNTRACKED


def test_abandoned_started_jobs_return_to_the_outbox_once() -> None:
    job_id = new_job()
    with transaction() as session:
        ledger.mark_published(session, [job_id])
    claim(job_id)
    expire_lease(job_id)

    with transaction() as session:
        assert ledger.requeue_abandoned(session) == 1
        ledger.mark_published(session, [job_id])
    with transaction() as session:
        assert ledger.requeue_abandoned(session) == 0


def finish_days_ago(job_id: uuid.UUID, state: JobState, days: float) -> None:
    with transaction() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(state=state, finished_at=func.now() - timedelta(days=days))
        )


def test_pruning_keeps_recent_and_failed_jobs_longer() -> None:
    old_success, old_failure, older_failure, recent = (new_job() for _ in range(4))
    finish_days_ago(old_success, JobState.SUCCEEDED, settings.job_retention_days + 1)
    finish_days_ago(old_failure, JobState.FAILED, settings.job_retention_days + 1)
    finish_days_ago(older_failure, JobState.FAILED, settings.failed_job_retention_days + 1)
    finish_days_ago(recent, JobState.SUCCEEDED, 0)

    assert prune_finished_jobs() == 2

    assert job_row(old_success) is None and job_row(older_failure) is None
    assert job_row(old_failure) is not None and job_row(recent) is not None


def test_a_queued_job_never_claimed_is_published_again() -> None:
    job_id = new_job()
    with transaction() as session:
        ledger.mark_published(session, [job_id])
        assert ledger.requeue_abandoned(session) == 0
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                published_at=func.now()
                - timedelta(seconds=settings.job_republish_after_seconds + 1)
            )
        )
    with transaction() as session:
        assert ledger.requeue_abandoned(session) == 1
    row = job_row(job_id)
    assert row is not None and row.published_at is None and row.state == JobState.QUEUED
