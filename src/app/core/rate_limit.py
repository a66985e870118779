"""Per-client rate limits kept in Redis, so every API process draws on the same buckets.

The limit is GCRA (the generic cell rate algorithm, a token bucket stored as one
timestamp per client): a client may make `burst` requests at once, then one every
1 / `per_second` seconds. One Lua script reads and moves the timestamp, so concurrent
requests from any number of processes cannot both take the last token.

Redis being down must never stop enqueueing: the job outbox exists so that a request
still commits its job while the broker is unreachable. So a limiter that cannot reach
Redis within a short timeout lets the request through (fails open), logs a warning,
and leaves Redis alone for a few seconds, so an outage costs one timeout per pause
rather than one per request.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

# Redis answers in well under a millisecond; waiting longer only delays the request.
REDIS_TIMEOUT_SECONDS = 0.25
PAUSE_AFTER_FAILURE_SECONDS = 5.0
MICROSECONDS = 1_000_000

# KEYS[1]: the client's key. ARGV: microseconds between requests, burst.
# Returns 0 when allowed, else the microseconds until the next request would be.
# The clock is Redis's, so API processes with skewed clocks agree.
_GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local next_tat = tat + interval
local allowed_at = next_tat - burst * interval
if allowed_at > now then
  return allowed_at - now
end
redis.call('SET', KEYS[1], string.format('%d', next_tat),
           'PX', math.ceil((next_tat - now) / 1000) + 1)
return 0
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    # Whole seconds, as the Retry-After header wants them; 0 when allowed.
    retry_after_seconds: int = 0


ALLOWED = RateDecision(allowed=True)


class RateLimiter:
    def __init__(
        self,
        redis_url: str,
        per_second: float,
        burst: int,
        key_prefix: str = "",
        timeout_seconds: float = REDIS_TIMEOUT_SECONDS,
        pause_after_failure_seconds: float = PAUSE_AFTER_FAILURE_SECONDS,
        connection_options: dict[str, Any] | None = None,
    ) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("a rate limit needs per_second > 0 and burst >= 1")
        self.per_second = per_second
        self.burst = burst
        self._interval_us = math.ceil(MICROSECONDS / per_second)
        self._key_prefix = f"{key_prefix}rate-limit:"
        self._pause_after_failure = pause_after_failure_seconds
        self._redis_down_until = 0.0
        self._lock = threading.Lock()
        # No retries: a retry would only stretch the time a request waits to fail open.
        self._redis = redis.Redis.from_url(
            redis_url,
            socket_connect_timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
            **(connection_options or {}),
        )
        self._script = self._redis.register_script(_GCRA)

    def check(self, client_key: str) -> RateDecision:
        """Take one request from the client's bucket, or say how long to wait."""
        if time.monotonic() < self._redis_down_until:
            return ALLOWED
        try:
            wait_us = int(self._script(keys=[self._key_prefix + client_key], args=self._args))
        except redis.RedisError as exc:
            self._pause(exc)
            return ALLOWED
        if wait_us == 0:
            return ALLOWED
        return RateDecision(allowed=False, retry_after_seconds=max(1, math.ceil(wait_us / 1e6)))

    def close(self) -> None:
        self._redis.close()

    @property
    def _args(self) -> list[int]:
        return [self._interval_us, self.burst]

    def _pause(self, exc: Exception) -> None:
        with self._lock:
            if time.monotonic() < self._redis_down_until:
                return  # another request already reported it
            self._redis_down_until = time.monotonic() + self._pause_after_failure
        logger.warning(
            "Rate limiting paused for %.0fs, requests let through: its Redis did not answer (%s)",
            self._pause_after_failure,
            exc,
        )
