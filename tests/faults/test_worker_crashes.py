"""Workers killed, stopped or wedged mid-task (T01, T02, T05, T06, T15, T16 in
docs/reliability.md): no accepted job is lost and no job's effect happens twice."""

import signal
import statistics
import time
import uuid

import pytest
import redis
from sqlalchemy import Engine, text

from app.core.db import engine, transaction
from durable_jobs import Job, JobState
from durable_jobs import _ledger as ledger
from tests.faults.checker import check, drain
from tests.faults.figures import REPEAT, add_row
from tests.faults.kill_points import (
    executions_of,
    kill_mid_task,
    redelivery_delays,
    time_to_next_execution,
)
from tests.faults.stack import Stack, add_record_jobs
from tests.support.fault_worker import kill_own_process, record
from tests.support.ledger import wait_for_job_state
from tests.support.runner import wait_until
from tests.support.servers import PrivateRedis
from tests.support.settings import settings

pytestmark = [pytest.mark.faults, pytest.mark.slow]

UNACKED_RESTORE_INTERVAL = 5  # app.worker: kombu's sweep for unacknowledged messages


def test_t01_pool_process_killed_mid_task_reruns_the_job_once(stack: Stack) -> None:
    stack.start_worker(concurrency=2)
    history = stack.history()
    add_record_jobs(history, count=3 * REPEAT + 10, seconds=1.5)
    kills: dict[uuid.UUID, float] = {}

    for _ in range(REPEAT):
        running = kill_mid_task(engine, spared=set(kills), max_offset=1.0)
        kills[running.job_id] = time.time()
    drained = drain(engine, timeout=60 + 3 * REPEAT)
    redeliveries = redelivery_delays(engine, kills)

    verdict = check(engine, history)
    verdict.assert_safe()
    assert verdict.dup_exec <= len(kills)
    add_row(
        "T01 pool process SIGKILL mid-task",
        verdict,
        redelivery=statistics.median(redeliveries),
        drain=drained,
        notes=f"{len(kills)} kills; redelivery median, max {redeliveries[-1]:.1f} s",
    )


def test_t01_control_without_reject_on_worker_lost_the_broker_drops_the_job(
    stack: Stack, redis_server: PrivateRedis
) -> None:
    """The unsafe default acknowledges a message whose process died: the broker
    forgets it. The job stays visible as started in the ledger, and only the relay's
    lease takeover runs it again."""
    stack.start_worker(concurrency=1, fault_reject_on_worker_lost="false")
    history = stack.history()
    add_record_jobs(history, count=1, seconds=5)

    running = kill_mid_task(engine, spared=set(), max_offset=0.5)
    killed = time.monotonic()
    stack.relay.stop()  # its lease takeover would hide what the broker did
    time.sleep(6)  # with reject_on_worker_lost the job runs again within about a second

    assert executions_of(engine, running.job_id) == 1
    broker = redis.Redis.from_url(redis_server.url)
    assert broker.llen(stack.env["TASK_DEFAULT_QUEUE"]) == 0 and broker.hlen("unacked") == 0
    broker.close()
    with transaction() as session:
        assert session.get(Job, running.job_id).state == JobState.STARTED  # type: ignore[union-attr]
    stack.restart_relay()
    redelivered = time_to_next_execution(engine, running.job_id, killed, 1, timeout=40)
    drained = drain(engine, timeout=30)
    verdict = check(engine, history)
    verdict.assert_safe()
    add_row(
        "T01 control: reject_on_worker_lost off",
        verdict,
        redelivery=redelivered,
        drain=drained,
        notes="broker dropped the message; ledger lease recovered it",
    )


def running_jobs(db: Engine) -> set[uuid.UUID]:
    with db.connect() as connection:
        return set(
            connection.scalars(
                text(
                    "SELECT job_id FROM executions x WHERE NOT EXISTS "
                    "(SELECT 1 FROM effects e WHERE e.job_id = x.job_id)"
                )
            )
        )


def test_t02_whole_worker_killed_its_jobs_run_again_within_the_bound(stack: Stack) -> None:
    """Redis keeps a dead worker's messages unacknowledged until the visibility
    timeout; the ledger lease (hard limit + grace) lets the relay republish sooner."""
    history = stack.history()
    bound = settings.effective_visibility_timeout + UNACKED_RESTORE_INTERVAL
    kills: dict[uuid.UUID, float] = {}
    for _ in range(max(1, REPEAT // 10)):
        worker = stack.start_worker(concurrency=2)
        add_record_jobs(history, count=6, seconds=3)
        wait_until(lambda: len(running_jobs(engine)) >= 2, 30, what="two running jobs")
        worker.kill_group()
        kills |= {job_id: time.time() for job_id in running_jobs(engine)}
        stack.start_worker(concurrency=2)
        drained = drain(engine, timeout=bound + 30)
        stack.workers[-1].stop()
    redeliveries = redelivery_delays(engine, kills)

    verdict = check(engine, history)
    verdict.assert_safe()
    assert redeliveries[-1] <= bound, f"redelivery {redeliveries[-1]:.1f}s above {bound}s"
    add_row(
        "T02 whole worker SIGKILL",
        verdict,
        redelivery=redeliveries[-1],
        drain=drained,
        notes=f"{len(kills)} jobs killed; bound V + sweep = {bound} s; "
        f"lease {settings.job_lease_seconds} s",
    )


def test_t05_sigterm_lets_running_jobs_finish_and_leaves_the_rest_queued(stack: Stack) -> None:
    worker = stack.start_worker(concurrency=2)
    history = stack.history()
    add_record_jobs(history, count=6, seconds=4)
    wait_until(lambda: len(running_jobs(engine)) >= 2, 30, what="two running jobs")

    worker.signal(signal.SIGTERM)
    asked = time.monotonic()
    assert worker.popen.wait(30) == 0
    shutdown = time.monotonic() - asked
    restarted = time.monotonic()
    stack.start_worker(concurrency=2)
    drained = drain(engine, timeout=60)

    verdict = check(engine, history)
    verdict.assert_safe()
    assert verdict.dup_exec == 0
    assert shutdown <= 4 + 10
    add_row(
        "T05 warm shutdown (SIGTERM)",
        verdict,
        drain=time.monotonic() - restarted,
        notes=f"exit 0 after {shutdown:.1f} s; drained {drained:.1f} s after restart",
    )


@pytest.mark.parametrize("soft_shutdown", [False, True], ids=["warm", "soft-then-cold"])
def test_t06_sigterm_then_sigkill_after_a_grace_period_loses_nothing(
    stack: Stack, soft_shutdown: bool
) -> None:
    grace = 3.0
    overrides = {"remap_sigterm": "SIGQUIT", "fault_soft_shutdown_timeout": "1"}
    worker = stack.start_worker(concurrency=2, **(overrides if soft_shutdown else {}))
    history = stack.history()
    add_record_jobs(history, count=2, seconds=6)
    wait_until(lambda: len(running_jobs(engine)) >= 2, 30, what="two running jobs")

    worker.signal(signal.SIGTERM)
    time.sleep(grace)
    worker.kill_group()
    kills = {job_id: time.time() for job_id in running_jobs(engine)}
    stack.start_worker(concurrency=2)
    drained = drain(engine, timeout=60)
    redeliveries = redelivery_delays(engine, kills)

    verdict = check(engine, history)
    verdict.assert_safe()
    add_row(
        f"T06 SIGTERM + SIGKILL at {grace:.0f} s ({'soft' if soft_shutdown else 'warm'})",
        verdict,
        redelivery=redeliveries[-1],
        drain=drained,
        notes=f"{len(kills)} jobs cut off",
    )


def test_t15_a_poison_job_ends_failed_while_other_jobs_keep_flowing(stack: Stack) -> None:
    stack.start_worker(concurrency=2)
    history = stack.history()
    with transaction() as session:
        poison = ledger.add_job(session, settings, kill_own_process.policy, {}).id
    add_record_jobs(history, count=50, seconds=0.2)
    started = time.monotonic()

    failed = wait_for_job_state(poison, JobState.FAILED, timeout=60)
    drain(engine, timeout=60)

    verdict = check(engine, history)
    verdict.assert_safe()
    assert failed.worker_losses == settings.job_max_worker_losses
    add_row(
        "T15 poison job among 50",
        verdict,
        drain=time.monotonic() - started,
        notes=f"poison failed after {failed.attempts} attempts",
    )


def test_t16_a_hung_task_is_stopped_by_the_time_limits_and_frees_its_slot(stack: Stack) -> None:
    stack.start_worker(concurrency=1, task_time_limit="4", task_soft_time_limit="2")
    with transaction() as session:
        soft = ledger.add_job(session, settings, record.policy, {"key": "soft", "seconds": 60}).id
        hard = ledger.add_job(
            session,
            settings,
            record.policy,
            {"key": "hard", "seconds": 60, "ignore_soft_limit": True},
        ).id
    history = stack.history()
    add_record_jobs(history, count=3, seconds=0.1)
    started = time.monotonic()

    soft_job = wait_for_job_state(soft, JobState.FAILED, timeout=30)
    hard_job = wait_for_job_state(hard, JobState.FAILED, timeout=90)
    drain(engine, timeout=30)

    verdict = check(engine, history)
    verdict.assert_safe()
    assert "SoftTimeLimitExceeded" in (soft_job.last_error or "")
    assert hard_job.worker_losses == settings.job_max_worker_losses
    add_row(
        "T16 hung task: soft, then hard limit",
        verdict,
        drain=time.monotonic() - started,
        notes="soft limit: failed on attempt 1; hard limit: failed after "
        f"{hard_job.worker_losses} worker losses",
    )
