"""What clients send (T14, T17 in docs/reliability.md): duplicate submissions make one
job, malformed ones make none, and neither gets a 500."""

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis

from app.core.db import engine
from tests.faults.checker import Outcome, check, drain
from tests.faults.figures import add_row
from tests.faults.stack import Stack
from tests.support.ledger import jobs_by_state, new_user_payload, user_count
from tests.support.servers import PrivateRedis
from tests.support.settings import settings
from tests.support.stats import p99

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def test_t14_one_idempotency_key_sent_100_times_makes_one_job(stack: Stack) -> None:
    stack.start_worker(concurrency=2, email_send_seconds="0.01")
    payload = new_user_payload()
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    history = stack.history()
    jobs_before = sum(jobs_by_state().values())

    def post(_: int) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = httpx.post(
            f"{stack.api_url}/api/v1/users", json=payload, headers=headers, timeout=30
        )
        return response, time.monotonic() - started

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, range(50)))
    answers += [post(n) for n in range(50)]  # a client retrying after its timeouts
    for response, seconds in answers:
        outcome = Outcome.OK if response.status_code == 201 else Outcome.FAIL
        history.add(payload["email"], outcome, 0.0, seconds)
    drained = drain(engine, timeout=30)

    verdict = check(engine, history)
    verdict.assert_safe()
    statuses = Counter(response.status_code for response, _ in answers)
    assert statuses == {201: 100}
    assert len({response.json()["welcome_email_job_id"] for response, _ in answers}) == 1
    assert sum(jobs_by_state().values()) == jobs_before + 1
    assert verdict.executions == 2  # this job and the stack's warm-up job
    replayed = sum(r.headers.get("Idempotent-Replayed") == "true" for r, _ in answers)
    add_row(
        "T14 one Idempotency-Key, 50 concurrent + 50 retries",
        verdict,
        api_p99=p99([seconds for _, seconds in answers]),
        drain=drained,
        notes=f"1 user, 1 job; {replayed} answers replayed",
    )


BIG = 10 * 1024 * 1024
BAD_REQUESTS: dict[str, tuple[bytes, dict[str, str]]] = {
    "10 MB body": (b'{"email": "' + b"a" * BIG + b'"}', {}),
    "10k-deep JSON": (b"[" * 10_000 + b"]" * 10_000, {}),
    "wrong types": (b'{"email": 5, "full_name": ["x"]}', {}),
    "extra field": (b'{"email": "x@example.com", "full_name": "X", "task": "jobs.prune"}', {}),
    "not UTF-8": (b'{"email": "\xff\xfe@example.com", "full_name": "X"}', {}),
    "huge integer": (b'{"email": "x@example.com", "full_name": ' + b"9" * 5000 + b"}", {}),
    "NUL in text": (b'{"email": "x@example.com", "full_name": "a\\u0000b"}', {}),
    "not JSON": (b"email=x@example.com", {"content-type": "application/x-www-form-urlencoded"}),
    "oversized Idempotency-Key": (
        b'{"email": "k@example.com", "full_name": "K"}',
        {"Idempotency-Key": "k" * 10_000},
    ),
    "empty Idempotency-Key": (
        b'{"email": "e@example.com", "full_name": "E"}',
        {"Idempotency-Key": ""},
    ),
}


def test_t17_malformed_requests_are_refused_and_enqueue_nothing(
    stack: Stack, redis_server: PrivateRedis
) -> None:
    stack.start_worker(concurrency=1)
    history = stack.history()
    drain(engine, timeout=30)
    users_before, jobs_before = user_count(), sum(jobs_by_state().values())
    statuses: dict[str, int] = {}
    seconds: list[float] = []

    for name, (body, headers) in BAD_REQUESTS.items():
        started = time.monotonic()
        response = httpx.post(
            f"{stack.api_url}/api/v1/users",
            content=body,
            headers={"content-type": "application/json", **headers},
            timeout=30,
        )
        seconds.append(time.monotonic() - started)
        statuses[name] = response.status_code

    assert all(400 <= status < 500 for status in statuses.values()), statuses
    assert (user_count(), sum(jobs_by_state().values())) == (users_before, jobs_before)
    assert queue_length(redis_server) == 0
    assert stack.create_user()[0].status_code == 201, "the API is still serving"
    add_row(
        f"T17 {len(BAD_REQUESTS)} malformed requests",
        check(engine, history),
        api_p99=p99(seconds),
        notes=", ".join(f"{name} {status}" for name, status in statuses.items()),
    )


def queue_length(redis_server: PrivateRedis) -> int:
    with redis.Redis.from_url(redis_server.url) as client:
        return int(client.llen(settings.task_default_queue))
