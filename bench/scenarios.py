"""The six benchmark scenarios. Import only after `bench.run` has set the environment:
the application reads its settings once, at import."""

import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select, text
from tests.support.runner import VENV_BIN, Process, free_port, wait_until
from tests.support.servers import PrivateRedis
from tests.support.stats import percentile

from app.core.config import get_settings
from app.core.db import engine, transaction
from app.core.migrate import ensure_database_exists, upgrade_to_head
from bench.procs import Children
from bench.tasks import (
    DONE_KEY,
    STARTS_KEY,
    bench_redis,
    noop,
    noop_concurrency_limited,
    noop_plain,
    noop_rate_limited,
)
from durable_jobs import Job, JobState, wait_for_publishing
from durable_jobs._broker import redis_queue_keys

settings = get_settings()

logger = logging.getLogger("bench")

Results = dict[str, dict[str, dict[str, list[float]]]]
# kombu's Redis transport keeps priorities 3, 6 and 9 in lists of their own.
FILL_BATCH = 500
FLOOR_PAYLOAD = b"x" * 1000  # about the size of a Celery task message
BENCH_LOCK_ID = 7_424_201


@dataclass(frozen=True)
class Options:
    reps: int
    jobs: int
    latency_jobs: int
    api_rate: float
    api_seconds: float
    down_seconds: float
    backlog_jobs: int
    backlog_rate: float
    backlog_seconds: float
    warmup: float
    floor_messages: int
    concurrency: int = 2


def rotate(variants: list[str], rep: int) -> list[str]:
    """A and B alternate: each repetition starts with the next variant."""
    shift = rep % len(variants)
    return variants[shift:] + variants[:shift]


class Bench:
    def __init__(self, options: Options, children: Children, run_id: str) -> None:
        self.options = options
        self.children = children
        self.run_id = run_id
        self.queue = settings.task_default_queue
        self.redis = bench_redis()
        self.worker: Process | None = None
        self._workers_started = 0
        self.results: Results = {}

    # -- set-up and tear-down ------------------------------------------------

    @contextmanager
    def database(self) -> Iterator[None]:
        """Migrate the bench database and hold its lock: one bench run at a time."""
        ensure_database_exists(settings.database_url)
        upgrade_to_head()
        with engine.connect() as lock:
            if not lock.scalar(text(f"SELECT pg_try_advisory_lock({BENCH_LOCK_ID})")):
                raise RuntimeError("another bench run holds the bench database; try later")
            try:
                yield
            finally:
                lock.execute(text(f"SELECT pg_advisory_unlock({BENCH_LOCK_ID})"))
                lock.commit()
        engine.dispose()

    def reset(self) -> None:
        """Empty queue, counters and tables, so each measurement starts alike."""
        self.purge_queue()
        self.redis.delete(DONE_KEY, STARTS_KEY)
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL lock_timeout = '20s'"))
            connection.execute(text("TRUNCATE users, jobs, job_unique_keys, idempotency_keys"))

    def purge_queue(self) -> None:
        self.redis.delete(*redis_queue_keys(self.queue))

    def queued(self) -> int:
        return sum(int(self.redis.llen(key)) for key in redis_queue_keys(self.queue))

    def done(self) -> int:
        return int(self.redis.get(DONE_KEY) or 0)

    def cleanup_redis(self) -> None:
        """Drop every key of this run, and its messages from kombu's shared unacked hash."""
        self.purge_queue()
        self.redis.delete(
            DONE_KEY,
            STARTS_KEY,
            f"_kombu.binding.{self.queue}",
            f"_kombu.binding_permanent.{self.queue}",
        )
        for key in self.redis.scan_iter(match=f"bench:{self.queue}:*", count=1000):
            self.redis.delete(key)
        for tag, raw in self.redis.hscan_iter("unacked", count=1000):
            try:
                routing_key = json.loads(raw)[2]
            except (ValueError, IndexError, TypeError):
                continue
            if routing_key == self.queue:
                self.redis.hdel("unacked", tag)
                self.redis.zrem("unacked_index", tag)

    def env(self, **overrides: str) -> dict[str, str]:
        return {**os.environ, **{key.upper(): value for key, value in overrides.items()}}

    # -- processes -------------------------------------------------------------

    def start_worker(self, warm: bool = True) -> Process:
        self._workers_started += 1
        argv = [
            str(VENV_BIN / "celery"),
            *("-A", "bench.tasks", "worker", "-c", str(self.options.concurrency)),
            *("-Q", self.queue, "-n", f"bench{self._workers_started}-{self.run_id}@%h"),
            *("-l", "warning", "--without-mingle", "--without-gossip"),
        ]
        self.worker = self.children.start(f"worker{self._workers_started}", argv, self.env())
        if warm:
            # Readiness is the first jobs run; one of each kind opens the DB and Redis.
            self.redis.delete(DONE_KEY)
            noop_plain.delay()
            noop.celery_task.delay()
            self.wait_done(2, timeout=60, what="the worker to run its first jobs")
            self.redis.delete(DONE_KEY)
        return self.worker

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.children.stop(self.worker, timeout=30)
            self.worker = None

    def wait_done(
        self, count: int, timeout: float, what: str = "", interval: float = 0.005
    ) -> None:
        worker = self.worker

        def reached() -> bool:
            if worker is not None and not worker.alive():
                raise RuntimeError(f"the worker exited:\n{worker.log_tail()}")
            return self.done() >= count

        wait_until(reached, timeout, interval, what or f"{count} jobs to run")

    def start_api(self, name: str, **overrides: str) -> tuple[Process, str]:
        port = free_port()
        argv = [
            sys.executable,
            *("-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)),
            *("--log-level", "warning", "--no-access-log"),
        ]
        api = self.children.start(name, argv, self.env(**overrides))
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            if not api.alive():
                raise RuntimeError(f"{name} exited:\n{api.log_tail()}")
            try:
                return httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, 30, 0.1, f"{name} to answer")
        return api, url

    def load(self, name: str, url: str, targets: list[str], seconds: float) -> list[dict[str, Any]]:
        argv = [sys.executable, "-m", "bench.load", url, "--seconds", str(seconds)]
        argv += ["--warmup", str(self.options.warmup)]
        for target in targets:
            argv += ["--target", target]
        out = self.children.run(f"load-{name}", argv, self.env(), seconds + 90)
        report: list[dict[str, Any]] = json.loads(out)
        for part in report:
            if part["max_send_lag_ms"] > 50:
                logger.warning(
                    "%s: the load generator fell %.0f ms behind its schedule",
                    name,
                    part["max_send_lag_ms"],
                )
        return report

    def record(self, scenario: str, variant: str, **values: float) -> None:
        slot = self.results.setdefault(scenario, {}).setdefault(variant, {})
        for metric, value in values.items():
            slot.setdefault(metric, []).append(float(value))

    # -- 1. throughput ---------------------------------------------------------

    def throughput(self) -> None:
        n = self.options.jobs
        senders: dict[str, Callable[[], object]] = {
            "durable": _enqueue_durable,
            "raw": noop_plain.delay,
        }
        for rep in range(self.options.reps):
            for variant in rotate(list(senders), rep):
                self.reset()
                send = senders[variant]
                started = time.perf_counter()
                for _ in range(n):
                    send()
                enqueued = time.perf_counter() - started
                self.wait_done(n, timeout=300, what=f"{n} {variant} jobs to run")
                finished = time.perf_counter() - started
                if variant == "durable":
                    wait_for_publishing(60)
                    self._check_ledger(n)
                self.record(
                    "throughput", variant, enqueue_per_s=n / enqueued, e2e_per_s=n / finished
                )
                logger.info(
                    "throughput %s #%d: enqueue %.0f/s, end to end %.0f/s",
                    variant,
                    rep + 1,
                    n / enqueued,
                    n / finished,
                )

    def _check_ledger(self, n: int) -> None:
        def all_succeeded() -> bool:
            with transaction() as session:
                count = session.scalar(select(func.count()).where(Job.state == JobState.SUCCEEDED))
            return count == n

        wait_until(all_succeeded, 30, 0.05, f"the ledger to show {n} succeeded jobs")

    # -- 7. limits ------------------------------------------------------------------

    def limits(self) -> None:
        """Scenario 1's durable run for a task with a global limit it never reaches,
        against the same task without: the cost of claiming under the limit lock."""
        n = self.options.jobs
        handles = {
            "unlimited": noop,
            "concurrency": noop_concurrency_limited,
            "rate": noop_rate_limited,
        }
        for rep in range(self.options.reps):
            for variant in rotate(list(handles), rep):
                self.reset()
                handle = handles[variant]
                started = time.perf_counter()
                for _ in range(n):
                    with transaction() as session:
                        handle.enqueue(session)
                self.wait_done(n, timeout=300, what=f"{n} {variant} jobs to run")
                elapsed = time.perf_counter() - started
                wait_for_publishing(60)
                self._check_ledger(n)
                self.record("limits", variant, e2e_per_s=n / elapsed)
                logger.info("limits %s #%d: end to end %.0f/s", variant, rep + 1, n / elapsed)

    # -- 2. latency ------------------------------------------------------------

    def latency(self) -> None:
        n = self.options.latency_jobs
        senders: dict[str, Callable[[float], object]] = {
            "durable": _enqueue_durable_at,
            "raw": lambda sent_at: noop_plain.delay(sent_at=sent_at),
            "raw_untracked": lambda sent_at: noop.celery_task.delay(sent_at=sent_at),
        }
        for rep in range(self.options.reps):
            for variant in rotate(list(senders), rep):
                self.reset()
                send = senders[variant]
                latencies: list[float] = []
                for _ in range(n):
                    send(time.time())
                    popped = self.redis.blpop([STARTS_KEY], timeout=30)
                    if popped is None:
                        raise RuntimeError(f"a {variant} job did not start within 30s")
                    latencies.append(float(popped[1]) * 1000)
                    time.sleep(0.002)  # the workers finish the job and are idle again
                if variant == "durable":
                    wait_for_publishing(10)
                latencies.sort()
                p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
                self.record("latency", variant, p50_ms=p50, p99_ms=p99, max_ms=latencies[-1])
                logger.info("latency %s #%d: p50 %.2f ms, p99 %.2f ms", variant, rep + 1, p50, p99)

    # -- 3. API under load -------------------------------------------------------

    def api(self, api_on: str, api_off: str) -> None:
        urls = {"with_enqueue": api_on, "without_enqueue": api_off}
        target = f"POST:/api/v1/users:{self.options.api_rate:g}"
        for rep in range(self.options.reps):
            for variant in rotate(list(urls), rep):
                self.reset()
                seconds = self.options.api_seconds
                [users] = self.load(f"api-{variant}-{rep}", urls[variant], [target], seconds)
                self._record_http("api", variant, users)

    def _record_http(
        self, scenario: str, variant: str, report: dict[str, Any], **extra: float
    ) -> None:
        self.record(
            scenario,
            variant,
            p50_ms=report["p50_ms"],
            p99_ms=report["p99_ms"],
            max_ms=report["max_ms"],
            errors=report["errors"],
            achieved_rate=report["achieved_rate"],
            **extra,
        )
        logger.info(
            "%s %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d errors, %.0f req/s",
            scenario,
            variant,
            report["p50_ms"],
            report["p99_ms"],
            report["max_ms"],
            report["errors"],
            report["achieved_rate"],
        )

    # -- 4. broker down -----------------------------------------------------------

    def broker_down(self) -> None:
        broker = PrivateRedis(appendonly=False)
        broker.start()
        _, url = self.start_api(
            "api-private-broker", broker_url=broker.url, send_welcome_email="true"
        )
        target = f"POST:/api/v1/users:{self.options.api_rate:g}"
        try:
            for rep in range(self.options.reps):
                for variant in rotate(["broker_up", "broker_down"], rep):
                    if variant == "broker_up" and broker.process is None:
                        broker.start()
                    if variant == "broker_down":
                        broker.stop()
                    self.reset()
                    [users] = self.load(
                        f"{variant}-{rep}", url, [target], self.options.down_seconds
                    )
                    time.sleep(0.5)  # the publisher's last batch
                    with transaction() as session:
                        unpublished = session.scalar(
                            select(func.count()).where(Job.published_at.is_(None))
                        )
                    self._record_http(
                        "broker_down", variant, users, left_for_relay=float(unpublished or 0)
                    )
        finally:
            broker.stop()
            shutil.rmtree(broker.dir, ignore_errors=True)

    # -- 5. backlog -----------------------------------------------------------------

    def backlog(self, api_url: str) -> None:
        """API latency while the worker drains a backlog, against no worker activity at all.

        The backlog is filled once and topped up to `backlog_jobs` before each backlog
        phase; in the idle phases the worker is stopped and the queue waits untouched.
        """
        rate = f"{self.options.backlog_rate:g}"
        targets = [f"GET:/api/v1/health:{rate}", f"POST:/api/v1/users:{rate}"]
        n = self.options.backlog_jobs
        self.stop_worker()
        self.reset()
        for rep in range(self.options.reps):
            for variant in rotate(["backlog", "idle"], rep):
                self.stop_worker()
                if variant == "backlog":
                    self._fill(n - self.queued())
                    queued_at_start = self.queued()
                    self.redis.delete(DONE_KEY)
                    self.start_worker(warm=False)
                    self.wait_done(1, timeout=60, what="the worker to start on the backlog")
                    drain_start = time.perf_counter()
                seconds = self.options.backlog_seconds
                health, users = self.load(f"{variant}-{rep}", api_url, targets, seconds)
                if variant == "backlog":
                    drained = self.done()
                    self.record(
                        "backlog",
                        variant,
                        queued_at_start=queued_at_start,
                        queued_at_end=self.queued(),
                        drain_per_s=drained / (time.perf_counter() - drain_start),
                    )
                    self.stop_worker()
                for name, report in (("health", health), ("users", users)):
                    self.record(
                        "backlog",
                        variant,
                        **{
                            f"{name}_p50_ms": report["p50_ms"],
                            f"{name}_p99_ms": report["p99_ms"],
                            f"{name}_max_ms": report["max_ms"],
                            f"{name}_errors": report["errors"],
                        },
                    )
                    logger.info(
                        "backlog %s %s: p50 %.1f ms, p99 %.1f ms, %d errors",
                        variant,
                        name,
                        report["p50_ms"],
                        report["p99_ms"],
                        report["errors"],
                    )
        self.stop_worker()
        self.reset()

    def _fill(self, n: int) -> None:
        """n more durable jobs in the ledger and on the broker, with no worker to take them."""
        if n <= 0:
            return
        target = self.queued() + n
        started = time.perf_counter()
        for start in range(0, n, FILL_BATCH):
            with transaction() as session:
                for _ in range(min(FILL_BATCH, n - start)):
                    noop.enqueue(session)
            if not wait_for_publishing(60):
                raise RuntimeError("the publisher did not publish the backlog within 60s")
        wait_until(lambda: self.queued() >= target, 30, 0.05, f"{target} messages queued")
        logger.info("backlog: %d jobs enqueued in %.1f s", n, time.perf_counter() - started)

    # -- 6. floor -------------------------------------------------------------------

    def floor(self) -> None:
        n = self.options.floor_messages
        key = f"bench:{self.queue}:floor"
        url = os.environ["BENCH_REDIS_URL"]
        for rep in range(self.options.reps):
            for variant in rotate(["loop", "pipelined"], rep):
                batch = 1 if variant == "loop" else 100
                self.redis.delete(key, f"{key}:ready", f"{key}:done")
                argv = [sys.executable, "-m", "bench.floor", url, key, str(n), str(batch)]
                consumer = self.children.start(f"floor-{variant}-{rep}", argv, self.env())
                if self.redis.blpop([f"{key}:ready"], timeout=30) is None:
                    raise RuntimeError(f"the floor consumer did not start:\n{consumer.log_tail()}")
                started = time.perf_counter()
                if batch == 1:
                    for _ in range(n):
                        self.redis.lpush(key, FLOOR_PAYLOAD)
                else:
                    for first in range(0, n, batch):
                        pipe = self.redis.pipeline(transaction=False)
                        for _ in range(min(batch, n - first)):
                            pipe.lpush(key, FLOOR_PAYLOAD)
                        pipe.execute()
                if self.redis.blpop([f"{key}:done"], timeout=60) is None:
                    raise RuntimeError(f"the floor consumer did not finish:\n{consumer.log_tail()}")
                elapsed = time.perf_counter() - started
                self.children.stop(consumer, timeout=5)
                self.record("floor", variant, per_s=n / elapsed)
                logger.info("floor %s #%d: %.0f messages/s", variant, rep + 1, n / elapsed)
        self.redis.delete(key, f"{key}:ready", f"{key}:done")


def _enqueue_durable() -> None:
    with transaction() as session:
        noop.enqueue(session)


def _enqueue_durable_at(sent_at: float) -> None:
    with transaction() as session:
        noop.enqueue(session, sent_at=sent_at)
