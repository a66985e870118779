"""PostgreSQL stopped under load (T12 in docs/reliability.md): the API refuses fast and
never accepts a job it did not commit; jobs finish once the database is back."""

import time

import pytest
from sqlalchemy import Engine

from tests.faults.checker import Outcome, check, drain
from tests.faults.figures import add_row
from tests.faults.load import SignUpLoad
from tests.faults.stack import Stack
from tests.support.servers import PrivatePostgres
from tests.support.stats import p99

pytestmark = [pytest.mark.faults, pytest.mark.slow]

OUTAGE_SECONDS = 8


def test_t12_database_stopped_under_load(
    postgres_stack: Stack, postgres: PrivatePostgres, postgres_engine: Engine
) -> None:
    stack = postgres_stack
    stack.start_worker(concurrency=2, email_send_seconds="0.01")
    history = stack.history()
    with SignUpLoad(stack, history):
        time.sleep(3)
        postgres.stop("immediate")
        outage_started = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        postgres.start()
        outage_ended = time.monotonic()
        time.sleep(4)
    drained = drain(postgres_engine, timeout=120)

    verdict = check(postgres_engine, history)
    verdict.assert_safe()
    assert not verdict.unexpected, "a refused request must not leave a job behind"
    refused = len(history.keys(Outcome.FAIL))
    assert refused > 0, "requests during the outage are refused"
    in_outage = history.latencies(outage_started, outage_ended)
    assert max(in_outage) < 7.0  # connect_timeout is 5 s
    add_row(
        f"T12 PostgreSQL stopped {OUTAGE_SECONDS} s under load",
        verdict,
        api_p99=p99(in_outage),
        drain=drained,
        notes=f"{refused} requests refused (503), {len(history.keys(Outcome.INFO))} unknown; "
        f"max {max(in_outage) * 1000:.0f} ms",
    )
