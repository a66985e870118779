"""Back-pressure on the endpoints that enqueue jobs: shed load while the backlog is over
SHED_QUEUE_DEPTH (503), and hold each client to its rate limit (429).

Shedding is checked first: it costs no round trip (the backlog is cached), and a request
refused for the server's sake should not also use up the client's allowance.
"""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status

from app.core.config import Settings
from app.core.rate_limit import RateLimiter
from app.schemas.error import ErrorBody
from app.services.backlog import BacklogGauge
from durable_jobs import redis_client_options

SHED_RETRY_AFTER_SECONDS = 5
UNKNOWN_CLIENT = "unknown"

_RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 1},
    }
}
# For the routes' OpenAPI `responses`: the 503 also covers the database being unavailable.
ENQUEUE_REFUSED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorBody,
        "description": "This client's rate limit (RATE_LIMIT_PER_SECOND) is used up",
        "headers": _RETRY_AFTER_HEADER,
    },
    503: {
        "model": ErrorBody,
        "description": "The job backlog is at SHED_QUEUE_DEPTH, or the database is "
        "unavailable; retry later",
        "headers": _RETRY_AFTER_HEADER,
    },
}


@dataclass(frozen=True)
class LoadShedder:
    depth: int
    gauge: BacklogGauge

    def overloaded(self) -> bool:
        return self.gauge.current() >= self.depth


def build_rate_limiter(settings: Settings) -> RateLimiter | None:
    """The app's limiter, shared by its requests; None when rate limiting is off."""
    redis_url = settings.effective_rate_limit_redis_url
    if settings.rate_limit_per_second == 0 or redis_url is None:
        return None
    return RateLimiter(
        redis_url,
        settings.rate_limit_per_second,
        settings.rate_limit_burst,
        key_prefix=settings.broker_broadcast_prefix,
        # A rediss:// URL is verified with the broker's TLS settings.
        connection_options=redis_client_options(settings, redis_url),
    )


def build_load_shedder(settings: Settings) -> LoadShedder | None:
    if settings.shed_queue_depth == 0:
        return None
    return LoadShedder(settings.shed_queue_depth, BacklogGauge())


# Async, so FastAPI calls them on the event loop rather than in a worker thread.
async def get_rate_limiter(request: Request) -> RateLimiter | None:
    """The app's limiter, or None when rate limiting is off."""
    limiter: RateLimiter | None = request.app.state.rate_limiter
    return limiter


async def get_load_shedder(request: Request) -> LoadShedder | None:
    """The app's shedder, or None when shedding is off."""
    shedder: LoadShedder | None = request.app.state.load_shedder
    return shedder


def client_key(request: Request) -> str:
    """The client's IP: behind a proxy, the one uvicorn takes from X-Forwarded-For when
    the proxy is in --forwarded-allow-ips. A header the client sets itself (an
    X-Client-Id) would let any client pick a fresh bucket per request."""
    return request.client.host if request.client else UNKNOWN_CLIENT


def guard_enqueue(
    request: Request,
    limiter: Annotated[RateLimiter | None, Depends(get_rate_limiter)],
    shedder: Annotated[LoadShedder | None, Depends(get_load_shedder)],
) -> None:
    if shedder is not None and shedder.overloaded():
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Too many jobs are waiting; the service accepts new work again once they drain",
            headers={"Retry-After": str(SHED_RETRY_AFTER_SECONDS)},
        )
    if limiter is not None:
        decision = limiter.check(client_key(request))
        if not decision.allowed:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"Rate limit of {limiter.per_second:g} requests per second "
                f"(bursts of {limiter.burst}) exceeded",
                headers={"Retry-After": str(decision.retry_after_seconds)},
            )
    if shedder is not None:
        shedder.gauge.count_admitted()


EnqueueGuard = Depends(guard_enqueue)
