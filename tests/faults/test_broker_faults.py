"""The broker stopped, frozen, crashed or restarted, and misconfigured (T03, T07, T08,
T09, T11 in docs/reliability.md): requests still answer, no accepted job is lost."""

import subprocess
import sys
import time

import httpx
import pytest
import redis
from celery import Celery
from pydantic import ValidationError
from sqlalchemy import text

from app.core.config import Settings
from app.core.db import engine
from tests.faults.checker import History, Outcome, check, drain
from tests.faults.figures import add_row
from tests.faults.load import SignUpLoad
from tests.faults.proxy import FaultProxy, Mode
from tests.faults.stack import Stack, add_record_jobs
from tests.support.fault_worker import record
from tests.support.runner import VENV_BIN, Process, wait_until
from tests.support.servers import PrivateRedis
from tests.support.settings import settings
from tests.support.stats import p99

pytestmark = [pytest.mark.faults, pytest.mark.slow]

FAULT_SECONDS = 8


def test_t03_a_visibility_timeout_below_twice_the_hard_limit_is_refused_at_start(
    stack: Stack,
) -> None:
    with pytest.raises(ValidationError, match="VISIBILITY_TIMEOUT must be at least twice"):
        Settings(task_time_limit=30, task_soft_time_limit=25, visibility_timeout=59)
    env = {**stack.env, "VISIBILITY_TIMEOUT": "5", "TASK_TIME_LIMIT": "10"}
    argv = [str(VENV_BIN / "celery"), "-A", "tests.support.fault_worker", "worker", "-c", "1"]
    refused = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    assert refused.returncode != 0
    assert "VISIBILITY_TIMEOUT must be at least twice" in refused.stderr + refused.stdout


def test_t03_control_guard_bypassed_redelivers_a_running_task(
    stack: Stack, redis_server: PrivateRedis
) -> None:
    """With the visibility timeout forced below the task's run time, Redis hands a
    running message to a second process. A ledger job is claimed once and the
    redelivery skipped; a message without a ledger row runs twice at once, and only
    the effect table's UNIQUE constraint keeps its effect single."""
    worker = stack.start_worker(
        concurrency=4,
        task_time_limit="40",
        task_soft_time_limit="35",
        fault_visibility_timeout="2",
    )
    history = stack.history()
    (tracked,) = add_record_jobs(history, count=1, seconds=12)
    raw_key = f"untracked-{time.monotonic_ns()}"
    publish_without_ledger(redis_server.url, raw_key, seconds=12)
    history.add(raw_key, Outcome.OK, time.monotonic(), 0.0)
    drained = drain(engine, timeout=60)
    wait_until(lambda: executions_by_key().get(raw_key, 0) >= 2, 30, what="a second run")
    wait_until(lambda: effect_repeats(raw_key) >= 1, 30, what="the second run to end")

    runs = executions_by_key()
    verdict = check(engine, history)
    verdict.assert_safe()
    assert runs[tracked] == 1 and f"Skipping job {job_id_of(tracked)}" in worker.log()
    assert runs[raw_key] >= 2 and executions_overlap(raw_key)
    add_row(
        "T03 control: visibility timeout 2 s < 12 s task",
        verdict,
        drain=drained,
        notes=f"ledger job ran {runs[tracked]}x (redelivery skipped); "
        f"ledger-less message ran {runs[raw_key]}x concurrently, effect kept single",
    )


def publish_without_ledger(broker_url: str, key: str, seconds: float) -> None:
    raw = Celery(broker=broker_url)
    raw.send_task(
        record.name,
        kwargs={"key": key, "seconds": seconds},
        queue=settings.task_default_queue,
        serializer="json",
    )
    raw.close()


def job_id_of(key: str) -> str:
    with engine.connect() as connection:
        job_id = connection.scalar(
            text("SELECT job_id FROM executions WHERE key = :k LIMIT 1"), {"k": key}
        )
        return str(job_id)


def executions_by_key() -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT key, count(*) FROM executions GROUP BY key"))
        return {key: count for key, count in rows}


def effect_repeats(key: str) -> int:
    with engine.connect() as connection:
        repeats = connection.scalar(text("SELECT repeats FROM effects WHERE key = :k"), {"k": key})
        return int(repeats or 0)


def executions_overlap(key: str) -> bool:
    """The second run started before the first one's effect was written."""
    with engine.connect() as connection:
        return bool(
            connection.scalar(
                text(
                    "SELECT (SELECT max(started_at) FROM executions WHERE key = :k) "
                    "< (SELECT done_at FROM effects WHERE key = :k)"
                ),
                {"k": key},
            )
        )


def test_t07_broker_stopped_under_load_every_accepted_job_runs(
    stack: Stack, redis_server: PrivateRedis
) -> None:
    stack.start_worker(concurrency=2, email_send_seconds="0.01")
    history = stack.history()
    with SignUpLoad(stack, history):
        time.sleep(3)
        redis_server.stop()
        fault_started = time.monotonic()
        time.sleep(FAULT_SECONDS)
        redis_server.start()
        fault_ended = time.monotonic()
        time.sleep(3)
    drained = drain(engine, timeout=60)

    verdict = check(engine, history)
    verdict.assert_safe()
    assert not history.keys(Outcome.FAIL) and not history.keys(Outcome.INFO)
    in_fault = p99(history.latencies(fault_started, fault_ended))
    assert in_fault < 2.0
    add_row(
        f"T07 broker stopped {FAULT_SECONDS} s under load",
        verdict,
        api_p99=in_fault,
        drain=drained,
        notes=f"baseline p99 {p99(history.latencies(until=fault_started)) * 1000:.0f} ms",
    )


def test_t08_broker_black_holed_requests_and_health_stay_fast(
    proxied_stack: Stack, broker_proxy: FaultProxy
) -> None:
    stack = proxied_stack
    stack.start_worker(concurrency=2, email_send_seconds="0.01")
    history = stack.history()
    health: list[float] = []
    with SignUpLoad(stack, history):
        time.sleep(3)
        broker_proxy.set_mode(Mode.BLACKHOLE)
        fault_started = time.monotonic()
        while time.monotonic() - fault_started < FAULT_SECONDS:
            health.append(timed_get(f"{stack.api_url}/api/v1/health"))
            time.sleep(0.2)
        broker_proxy.set_mode(Mode.PASS)
        fault_ended = time.monotonic()
        time.sleep(3)
    drained = drain(engine, timeout=90)

    verdict = check(engine, history)
    verdict.assert_safe()
    assert not history.keys(Outcome.FAIL) and not history.keys(Outcome.INFO)
    in_fault = p99(history.latencies(fault_started, fault_ended))
    assert in_fault < 2.0 and p99(health) < 1.0
    add_row(
        f"T08 broker black-holed {FAULT_SECONDS} s under load",
        verdict,
        api_p99=in_fault,
        drain=drained,
        notes=f"/health p99 {p99(health) * 1000:.0f} ms in the fault",
    )


def timed_get(url: str) -> float:
    started = time.monotonic()
    httpx.get(url, timeout=10).raise_for_status()
    return time.monotonic() - started


# One inline publish, with Celery's defaults or with the application's settings.
PUBLISH_ONCE = """
import os, sys, time
from celery import Celery
if sys.argv[1] == "bounded":
    from app.worker import celery_app as app
else:
    app = Celery(broker=os.environ["BROKER_URL"])
started = time.monotonic()
try:
    app.send_task("faults.record", kwargs={"key": "x"}, queue=os.environ["TASK_DEFAULT_QUEUE"])
except Exception as exc:
    print(type(exc).__name__, flush=True)
print(f"{time.monotonic() - started:.2f}", flush=True)
"""


def test_t08_control_a_publish_without_socket_timeout_hangs_on_a_frozen_broker(
    stack: Stack, broker_proxy: FaultProxy
) -> None:
    """Celery's defaults block an inline publish for as long as the broker is frozen;
    the application's bounded settings give up, and the outbox keeps the job."""
    broker_proxy.set_mode(Mode.BLACKHOLE)
    env = {**stack.env, "BROKER_URL": f"redis://127.0.0.1:{broker_proxy.port}/0"}
    bounded = subprocess.run(
        [sys.executable, "-c", PUBLISH_ONCE, "bounded"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    default = Process("default-publish", [sys.executable, "-c", PUBLISH_ONCE, "default"], env)
    bound = (settings.publish_max_retries + 1) * (
        settings.broker_connect_timeout + settings.broker_socket_timeout
    )
    time.sleep(bound + 5)
    still_blocked = default.popen.poll() is None
    default.stop(timeout=1)

    publish_seconds = float(bounded.stdout.split()[-1])
    assert publish_seconds <= bound + 5, bounded.stdout + bounded.stderr
    assert still_blocked, default.log()
    add_row(
        "T08 control: publish without socket_timeout",
        check(engine, History()),
        notes=f"default settings: still blocked after {bound + 5:.0f} s; "
        f"app settings: gave up after {publish_seconds:.1f} s",
    )


@pytest.mark.parametrize(
    "broker_server", [True, False], ids=["aof-everysec", "no-aof"], indirect=True
)
def test_t09_broker_crash_loses_its_backlog_and_the_ledger_republishes_it(
    stack: Stack, redis_server: PrivateRedis
) -> None:
    history = stack.history()
    add_record_jobs(history, count=200, seconds=0.0)
    wait_until(outbox_is_empty, 30, what="the relay to publish every job")
    time.sleep(1.5)  # appendfsync everysec: what was written a second ago is on disk
    queued_before = queue_length(redis_server)

    redis_server.crash()
    redis_server.start()
    queued_after = queue_length(redis_server)
    stack.restart_relay(job_republish_after_seconds="5")
    restarted = time.monotonic()
    stack.start_worker(concurrency=2)
    drained = drain(engine, timeout=90)

    verdict = check(engine, history)
    verdict.assert_safe()
    mode = "AOF everysec" if redis_server.appendonly else "no AOF"
    add_row(
        f"T09 Redis kill -9 with 200 queued ({mode})",
        verdict,
        drain=time.monotonic() - restarted,
        notes=f"queue held {queued_before} messages before the crash, {queued_after} after; "
        f"the ledger republished what was missing (drained {drained:.1f} s)",
    )


def queue_length(redis_server: PrivateRedis) -> int:
    with redis.Redis.from_url(redis_server.url) as client:
        return int(client.llen(settings.task_default_queue))


def outbox_is_empty() -> bool:
    with engine.connect() as connection:
        unpublished = connection.scalar(
            text("SELECT count(*) FROM jobs WHERE published_at IS NULL")
        )
        return bool(unpublished == 0)


def test_t11_broker_restarted_while_tasks_run(stack: Stack, redis_server: PrivateRedis) -> None:
    worker = stack.start_worker(concurrency=2)
    history = stack.history()
    add_record_jobs(history, count=2, seconds=6)
    wait_until(lambda: len(executions_by_key()) >= 3, 30, what="two running jobs")

    connected_before = worker.log().count("Connected to redis")
    redis_server.stop()
    time.sleep(2)
    redis_server.start()
    restarted = time.monotonic()
    wait_until(
        lambda: worker.log().count("Connected to redis") > connected_before, 60, what="reconnect"
    )
    reconnected = time.monotonic() - restarted
    add_record_jobs(history, count=10, seconds=0.1)
    drained = drain(engine, timeout=90)

    verdict = check(engine, history)
    verdict.assert_safe()
    add_row(
        "T11 Redis restarted under 2 running tasks",
        verdict,
        drain=drained,
        notes=f"worker reconnected {reconnected:.1f} s after the restart",
    )
