"""Fixtures of the fault suite: private brokers and databases to break, stacks of real
processes on them; the figures and the table at the end of the run."""

import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine

from tests.faults.figures import FIGURES, ROWS, markdown_table, write_table
from tests.faults.proxy import FaultProxy
from tests.faults.stack import Stack, running_stack
from tests.support.broker_env import ON_RABBITMQ
from tests.support.effects import create_tables
from tests.support.runner import child_env
from tests.support.servers import (
    PrivateBroker,
    PrivatePostgres,
    PrivateRedis,
    private_rabbitmq,
    private_redis,
)


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """On a failure, attach the stack's process logs to the report."""
    report_ = yield
    stack_ = item.funcargs.get("stack") if hasattr(item, "funcargs") else None
    if report_.failed and isinstance(stack_, Stack):
        for process in [*stack_.processes, *stack_.workers]:
            report_.sections.append((f"log of {process.name}", process.log()[-20000:]))
    return report_
