"""A whole stack of real processes (API, relay, workers) on a broker of the test's choosing."""

import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import Engine, create_engine

from app.core.db import transaction
from durable_jobs import _ledger as ledger
from tests.conftest import RUN_ID
from tests.faults.checker import History, Outcome
from tests.faults.figures import ROWS, markdown_table, write_table
from tests.faults.proxy import FaultProxy
from tests.support.broker_env import ON_RABBITMQ
from tests.support.effects import create_tables
from tests.support.fault_worker import record
from tests.support.ledger import new_user_payload
from tests.support.processes import (
    PrivateBroker,
    PrivatePostgres,
    PrivateRedis,
    Process,
    child_env,
    private_rabbitmq,
    private_redis,
    start_api,
    start_relay,
    start_worker,
)
from tests.support.settings import settings


@dataclass
class Stack:
    env: dict[str, str]
    api_url: str = ""
    warm_up_email: str = ""
    processes: list[Process] = field(default_factory=list)
    workers: list[Process] = field(default_factory=list)

    @property
    def relay(self) -> Process:
        return next(process for process in self.processes if process.name == "relay")

    def start_api(self) -> None:
        api, self.api_url = start_api(self.env)
        self.processes.append(api)

    def start_relay(self, **overrides: str) -> Process:
        env = {**self.env, **{key.upper(): value for key, value in overrides.items()}}
        relay = start_relay(env)
        self.processes.append(relay)
        return relay

    def restart_relay(self, **overrides: str) -> Process:
        for relay in [process for process in self.processes if process.name == "relay"]:
            relay.stop()
            self.processes.remove(relay)
        return self.start_relay(**overrides)

    def start_worker(self, concurrency: int = 2, **overrides: str) -> Process:
        env = {**self.env, **{key.upper(): value for key, value in overrides.items()}}
        name = f"fault{len(self.workers) + 1}-{RUN_ID}"
        worker = start_worker(name, env, concurrency)
        self.workers.append(worker)
        return worker

    def worker_logs(self) -> str:
        return "\n".join(worker.log() for worker in self.workers)

    def create_user(self, **headers: str) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = httpx.post(
            f"{self.api_url}/api/v1/users", json=new_user_payload(), headers=headers, timeout=30
        )
        return response, time.monotonic() - started

    def history(self) -> History:
        """A history that already holds the stack's warm-up sign-up, a job like any other."""
        history = History()
        history.add(self.warm_up_email, Outcome.OK, time.monotonic(), 0.0)
        return history

    def sign_up(self, history: History, n: int, timeout: float = 10) -> httpx.Response | None:
        """POST a new user and record the outcome, keyed by the email, in `history`."""
        payload = new_user_payload(f"{n}-{RUN_ID}")
        started = time.monotonic()
        try:
            response = httpx.post(f"{self.api_url}/api/v1/users", json=payload, timeout=timeout)
        except httpx.HTTPError:
            history.add(payload["email"], Outcome.INFO, started, time.monotonic() - started)
            return None
        outcome = Outcome.OK if response.status_code == 201 else Outcome.FAIL
        if response.status_code >= 500 and response.status_code != 503:
            outcome = Outcome.INFO  # a 500 may come after the commit
        history.add(payload["email"], outcome, started, time.monotonic() - started)
        return response

    def stop(self) -> None:
        for process in [*self.workers, *self.processes]:
            process.stop(timeout=15)


def add_record_jobs(
    history: History, count: int, seconds: float = 0.0, **options: object
) -> list[str]:
    """Commit `count` jobs of the recording task to the outbox (the relay publishes
    them) and record each as accepted; returns their keys."""
    keys = [f"job-{index}-{time.monotonic_ns()}" for index in range(count)]
    now = time.monotonic()
    with transaction() as session:
        for key in keys:
            ledger.add_job(
                session, settings, record.policy, {"key": key, "seconds": seconds, **options}
            )
    for key in keys:
        history.add(key, Outcome.OK, now, 0.0)
    return keys


@pytest.fixture
def broker_server(request: pytest.FixtureRequest) -> Iterator[PrivateBroker]:
    """A broker of the test's own, to stop, freeze and crash: RabbitMQ or Redis, as the run
    tests; Redis is append-only unless a test parametrizes this fixture with False."""
    if ON_RABBITMQ:
        with private_rabbitmq() as rabbitmq:
            yield rabbitmq
    else:
        with private_redis(appendonly=getattr(request, "param", True)) as redis:
            yield redis


@pytest.fixture
def redis_server(broker_server: PrivateBroker) -> PrivateRedis:
    """The private broker, for the scenarios about Redis itself (skipped on RabbitMQ)."""
    if not isinstance(broker_server, PrivateRedis):
        pytest.skip("a scenario of Redis itself")
    return broker_server


@pytest.fixture
def stack(broker_server: PrivateBroker) -> Iterator[Stack]:
    """API and relay on the private broker; each test starts the workers it needs."""
    yield from running_stack(broker_server.url)


@pytest.fixture
def broker_proxy(redis_server: PrivateRedis) -> Iterator[FaultProxy]:
    proxy = FaultProxy(redis_server.port).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxied_stack(broker_proxy: FaultProxy) -> Iterator[Stack]:
    """A stack whose every process reaches the private Redis through the fault proxy."""
    yield from running_stack(f"redis://127.0.0.1:{broker_proxy.port}/0")


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture
def postgres_engine(postgres: PrivatePostgres) -> Iterator[Engine]:
    """The private cluster's database, migrated, with the workers' record tables."""
    url = postgres.url("app")
    migrate = [sys.executable, "-m", "app.core.migrate"]
    subprocess.run(migrate, env=child_env({"DATABASE_URL": url}), check=True, timeout=120)
    db = create_engine(url)
    with db.begin() as connection:
        create_tables(connection)
    yield db
    db.dispose()


@pytest.fixture
def postgres_stack(
    broker_server: PrivateBroker, postgres: PrivatePostgres, postgres_engine: Engine
) -> Iterator[Stack]:
    """A stack whose database is the private cluster, which the test may stop."""
    yield from running_stack(
        broker_server.url, DATABASE_URL=postgres.url("app"), JOB_REPUBLISH_AFTER_SECONDS="5"
    )


def running_stack(broker_url: str, **overrides: str) -> Iterator[Stack]:
    running = Stack(env=child_env({"BROKER_URL": broker_url, **overrides}))
    running.start_api()
    running.start_relay()
    warm_up, _ = running.create_user()  # the API's first database connection is not the test
    assert warm_up.status_code == 201
    running.warm_up_email = warm_up.json()["email"]
    yield running
    running.stop()


FIGURES: list[str] = []


def report(name: str, **figures: object) -> None:
    """Keep a test's figures for the summary printed at the end of the run."""
    FIGURES.append(f"{name}: " + ", ".join(f"{key}={value}" for key, value in figures.items()))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("fault figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
    if ROWS:
        terminalreporter.section("fault table")
        for line in markdown_table(ROWS):
            terminalreporter.write_line(line)
        write_table(ROWS)


def summarize(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"n={len(ordered)} p50={statistics.median(ordered) * 1000:.0f}ms "
        f"p99={p99 * 1000:.0f}ms max={ordered[-1] * 1000:.0f}ms"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """On a failure, attach the stack's process logs to the report."""
    report_ = yield
    stack_ = item.funcargs.get("stack") if hasattr(item, "funcargs") else None
    if report_.failed and isinstance(stack_, Stack):
        for process in [*stack_.processes, *stack_.workers]:
            report_.sections.append((f"log of {process.name}", process.log()[-20000:]))
    return report_
