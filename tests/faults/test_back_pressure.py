"""T20, burst and back-pressure, on real processes: one client bursts while a few send at
a normal rate, each from its own loopback address; a slow worker lets the backlog reach
SHED_QUEUE_DEPTH. The burst client is held to its rate (429), everyone is shed at the
depth (503), the normal clients are never rate limited, and every 201's job runs."""

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select

from app.core.db import engine, transaction
from app.services.backlog import read_backlog
from durable_jobs import Job, JobState
from tests.faults.checker import History, Outcome, check
from tests.faults.figures import add_row, report
from tests.faults.stack import Stack, running_stack
from tests.support.broker_env import REDIS_URL
from tests.support.ledger import new_user_payload, user_count
from tests.support.runner import wait_until
from tests.support.servers import PrivateBroker
from tests.support.stats import p99, summarize

pytestmark = pytest.mark.faults

RATE_PER_SECOND = 20
BURST = 20
SHED_DEPTH = 40
# The worker runs about 5 jobs a second, so the clients below outrun it within a second.
WORKER_SEND_SECONDS = "0.2"

LOAD_SECONDS = 3.0
BURST_REQUESTS = 400
BURST_CONCURRENCY = 16
BURST_ADDRESS = "127.0.0.2"
NORMAL_ADDRESSES = ("127.0.0.3", "127.0.0.4", "127.0.0.5")
NORMAL_PER_SECOND = 4
# No request is admitted while the backlog is at the depth; the ones already past the
# check (at most one per open connection) can still add their job.
IN_FLIGHT_BOUND = BURST_CONCURRENCY + len(NORMAL_ADDRESSES)


@dataclass(frozen=True)
class Answer:
    client: str
    email: str
    status: int
    seconds: float
    retry_after: str | None
    job_id: str | None


@pytest.fixture
def stack(broker_server: PrivateBroker) -> Iterator[Stack]:
    """The fault stack with back-pressure on (the test suite turns it off elsewhere)."""
    yield from running_stack(
        broker_server.url,
        RATE_LIMIT_REDIS_URL=REDIS_URL,
        RATE_LIMIT_PER_SECOND=str(RATE_PER_SECOND),
        RATE_LIMIT_BURST=str(BURST),
        SHED_QUEUE_DEPTH=str(SHED_DEPTH),
    )


def client_from(stack: Stack, address: str, connections: int) -> httpx.Client:
    # Every 127.x address is loopback on Linux: a distinct source address, a distinct client.
    transport = httpx.HTTPTransport(
        local_address=address, limits=httpx.Limits(max_connections=connections)
    )
    return httpx.Client(base_url=stack.api_url, transport=transport, timeout=30)


def create_user(http: httpx.Client, client: str) -> Answer:
    payload = new_user_payload()
    started = time.monotonic()
    response = http.post("/api/v1/users", json=payload)
    job_id = response.json()["welcome_email_job_id"] if response.status_code == 201 else None
    return Answer(
        client,
        payload["email"],
        response.status_code,
        time.monotonic() - started,
        response.headers.get("Retry-After"),
        job_id,
    )


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def burst(stack: Stack, start: float) -> list[Answer]:
    """BURST_REQUESTS spread evenly over LOAD_SECONDS (open loop), BURST_CONCURRENCY at once."""
    with (
        client_from(stack, BURST_ADDRESS, BURST_CONCURRENCY) as http,
        ThreadPoolExecutor(BURST_CONCURRENCY) as pool,
    ):
        futures = []
        for i in range(BURST_REQUESTS):
            sleep_until(start + i * LOAD_SECONDS / BURST_REQUESTS)
            futures.append(pool.submit(create_user, http, "burst"))
        return [future.result() for future in futures]


def normal_client(stack: Stack, address: str, start: float, outcomes: list[Answer]) -> None:
    with client_from(stack, address, 1) as http:
        for i in range(int(LOAD_SECONDS * NORMAL_PER_SECOND)):
            sleep_until(start + i / NORMAL_PER_SECOND)
            outcomes.append(create_user(http, address))


class BacklogSampler(threading.Thread):
    """Reads the backlog from the ledger every 50 ms and keeps the largest."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.largest = 0
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(0.05):
            self.largest = max(self.largest, read_backlog())

    def stop(self) -> None:
        self._stopping.set()
        self.join(5)


def succeeded_count(job_ids: list[str]) -> int:
    ids = [uuid.UUID(job_id) for job_id in job_ids]
    with transaction() as session:
        query = select(func.count()).where(Job.id.in_(ids), Job.state == JobState.SUCCEEDED)
        return session.scalar(query.select_from(Job)) or 0


def ratio(outcomes: list[Answer], status: int) -> str:
    return f"{sum(o.status == status for o in outcomes)}/{len(outcomes)}"


def test_t20_burst_gets_429_everyone_is_shed_at_the_depth_and_no_201_is_lost(
    stack: Stack,
) -> None:
    stack.start_worker(concurrency=1, email_send_seconds=WORKER_SEND_SECONDS)
    sampler = BacklogSampler()
    sampler.start()
    normal: dict[str, list[Answer]] = {address: [] for address in NORMAL_ADDRESSES}
    start = time.monotonic() + 0.2
    threads = [
        threading.Thread(target=normal_client, args=(stack, address, start, normal[address]))
        for address in NORMAL_ADDRESSES
    ]
    for thread in threads:
        thread.start()
    bursty = burst(stack, start)
    for thread in threads:
        thread.join(60)
    load_seconds = time.monotonic() - start

    everyone = bursty + [o for outcomes in normal.values() for o in outcomes]
    created = [o.job_id for o in everyone if o.job_id is not None]
    drain_started = time.monotonic()
    wait_until(
        lambda: succeeded_count(created) == len(created), 90, interval=0.5, what="every 201's job"
    )
    drain_seconds = time.monotonic() - drain_started
    sampler.stop()

    assert {o.status for o in everyone} <= {201, 429, 503}
    refused = [o for o in bursty if o.status == 429]
    assert refused, "the burst client was never rate limited"
    assert all(o.retry_after and int(o.retry_after) >= 1 for o in everyone if o.status != 201)
    assert not [o for outcomes in normal.values() for o in outcomes if o.status == 429]
    assert any(o.status == 503 for o in everyone), "the backlog never reached the shed depth"
    burst_created = sum(o.status == 201 for o in bursty)
    assert burst_created <= BURST + RATE_PER_SECOND * load_seconds + 1
    assert user_count() == len(created) + 1  # and the warm-up's
    assert sampler.largest <= SHED_DEPTH + IN_FLIGHT_BOUND
    normal_seconds = [o.seconds for outcomes in normal.values() for o in outcomes]
    report(
        "T20 burst and back-pressure",
        burst_429=ratio(bursty, 429),
        burst_503=ratio(bursty, 503),
        **{f"normal_{address}_429": ratio(normal[address], 429) for address in NORMAL_ADDRESSES},
        normal_503=ratio([o for outcomes in normal.values() for o in outcomes], 503),
        normal_latency=summarize(normal_seconds),
        burst_latency=summarize([o.seconds for o in bursty]),
        created=len(created),
        lost=len(created) - succeeded_count(created),
        max_backlog=f"{sampler.largest} (depth {SHED_DEPTH}, in flight <= {IN_FLIGHT_BOUND})",
        drain=f"{drain_seconds:.1f}s",
    )
    verdict = check(engine, recorded(stack, everyone))
    verdict.assert_safe()
    add_row(
        f"T20 burst of {BURST_REQUESTS} + {len(NORMAL_ADDRESSES)} normal clients",
        verdict,
        api_p99=p99(normal_seconds),
        drain=drain_seconds,
        notes=f"burst: 429 {ratio(bursty, 429)}, 503 {ratio(bursty, 503)}; normal: 429 0, "
        f"503 {ratio([o for outcomes in normal.values() for o in outcomes], 503)}; "
        f"backlog max {sampler.largest} (shed at {SHED_DEPTH})",
    )


def recorded(stack: Stack, answers: list[Answer]) -> History:
    """The checker's history: a 201 is an accepted job, a 429 or 503 a refusal."""
    history = stack.history()
    for answer in answers:
        outcome = Outcome.OK if answer.status == 201 else Outcome.FAIL
        history.add(answer.email, outcome, 0.0, answer.seconds)
    return history
