"""The Redis rate limiter on the real Redis: bursts, refill, isolation, and failing open."""

import logging
import threading
import time

import pytest
import redis

from app.core.rate_limit import RateLimiter
from tests.support.broker_env import REDIS_URL
from tests.support.runner import free_port
from tests.support.servers import private_redis


def limiter(
    key_prefix: str, per_second: float = 2, burst: int = 3, **options: float
) -> RateLimiter:
    return RateLimiter(REDIS_URL, per_second, burst, key_prefix=key_prefix, **options)


def test_a_burst_is_allowed_then_refused_with_the_wait_in_whole_seconds(key_prefix: str) -> None:
    limit = limiter(key_prefix, per_second=0.5, burst=3)

    decisions = [limit.check("1.2.3.4") for _ in range(5)]

    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    # One request every 2 s: the next is allowed in 2 s at most, said as 2, never 0.
    assert [d.retry_after_seconds for d in decisions[3:]] == [2, 2]


def test_a_wait_under_a_second_is_still_said_as_one(key_prefix: str) -> None:
    limit = limiter(key_prefix, per_second=20, burst=1)

    assert limit.check("1.2.3.4").allowed
    refused = limit.check("1.2.3.4")

    assert not refused.allowed
    assert refused.retry_after_seconds == 1


def test_the_bucket_refills_at_the_rate(key_prefix: str) -> None:
    limit = limiter(key_prefix, per_second=10, burst=2)
    assert [limit.check("c").allowed for _ in range(3)] == [True, True, False]

    time.sleep(0.12)

    assert [limit.check("c").allowed for _ in range(2)] == [True, False]


def test_each_client_has_its_own_bucket(key_prefix: str) -> None:
    limit = limiter(key_prefix, burst=2)
    assert [limit.check("greedy").allowed for _ in range(3)] == [True, True, False]

    assert limit.check("other").allowed


def test_processes_share_the_buckets_through_redis(key_prefix: str) -> None:
    """Two limiters stand for two API processes: together they allow one burst, not two."""
    first, second = limiter(key_prefix, burst=4), limiter(key_prefix, burst=4)

    allowed = [lim.check("c").allowed for lim in (first, second) * 4]

    assert allowed.count(True) == 4


def test_concurrent_requests_never_take_more_than_the_burst(key_prefix: str) -> None:
    limit = limiter(key_prefix, per_second=0.1, burst=10)
    results: list[bool] = []

    def take() -> None:
        for _ in range(10):
            results.append(limit.check("c").allowed)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results.count(True) == 10


def test_an_idle_client_leaves_no_key_behind(key_prefix: str) -> None:
    limit = limiter(key_prefix, per_second=20, burst=1)
    limit.check("c")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        ttl = client.pttl(f"{key_prefix}rate-limit:c")
    finally:
        client.close()

    assert 0 < ttl <= 51


def test_an_unreachable_redis_lets_requests_through_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limit = RateLimiter(f"redis://127.0.0.1:{free_port()}/0", per_second=1, burst=1)

    with caplog.at_level(logging.WARNING, logger="app.core.rate_limit"):
        decisions = [limit.check("c") for _ in range(5)]

    assert all(d.allowed for d in decisions)
    warnings = [r for r in caplog.records if "did not answer" in r.getMessage()]
    assert len(warnings) == 1


def test_a_frozen_redis_costs_one_short_timeout_then_nothing() -> None:
    with private_redis() as server:
        limit = RateLimiter(server.url, per_second=1, burst=1, timeout_seconds=0.2)
        assert limit.check("c").allowed
        server.freeze()

        started = time.monotonic()
        first = limit.check("c")
        first_took = time.monotonic() - started
        started = time.monotonic()
        during_pause = [limit.check("c") for _ in range(20)]
        pause_took = time.monotonic() - started

    # Frozen, Redis would have refused this second request; unreachable, it is let through.
    assert first.allowed and all(d.allowed for d in during_pause)
    assert first_took < 1.0
    assert pause_took < 0.1


def test_limiting_resumes_once_redis_is_back() -> None:
    with private_redis() as server:
        limit = RateLimiter(server.url, per_second=1, burst=1, pause_after_failure_seconds=0.2)
        server.stop()
        assert [limit.check("c").allowed for _ in range(3)] == [True, True, True]

        server.start()
        time.sleep(0.25)

        assert [limit.check("c").allowed for _ in range(2)] == [True, False]
