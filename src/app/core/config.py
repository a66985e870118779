"""The service's one settings object, read from the environment and `.env`."""

import os
import re
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REDIS_SCHEMES = ("redis://", "rediss://")
# An origin as browsers send it: scheme, host and optional port, no path.
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


class Settings(BaseSettings):
    # APP_ENV_FILE names another file to read instead of `.env`; empty reads none.
    model_config = SettingsConfigDict(
        env_file=os.environ.get("APP_ENV_FILE", ".env") or None, extra="ignore"
    )

    environment: Literal["development", "test", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # text for a terminal (make dev), json for containers and log collectors.
    log_format: Literal["text", "json"] = "text"

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/app"
    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend: str | None = None
    # Separates this deployment's broadcasts (worker inspection, events) from others
    # sharing the Redis database; give each its own TASK_DEFAULT_QUEUE as well.
    broker_broadcast_prefix: str = ""
    task_default_queue: str = "default"

    # Celery task events, for Flower or `celery events`; off, as the job ledger already
    # records every state and the events double the cost of each publish.
    task_events: bool = False

    # Time limits bound every task; the broker's redelivery timeout derives from them.
    task_time_limit: int = Field(default=60, ge=1)
    task_soft_time_limit: int = Field(default=50, ge=1)
    visibility_timeout: int | None = Field(default=None, ge=1)

    # Publishing must never stall a request or the relay on a dead or frozen broker.
    broker_connect_timeout: float = Field(default=2.0, gt=0)
    broker_socket_timeout: float = Field(default=5.0, gt=1)
    publish_max_retries: int = Field(default=2, ge=0)

    # RabbitMQ only. Deliveries of one message before the broker dead-letters it; above
    # JOB_MAX_WORKER_LOSSES, so the ledger fails a crash-looping job first and the
    # dead-letter queue only catches what the ledger cannot (unknown or broken messages).
    broker_delivery_limit: int = Field(default=10, ge=1)
    # RabbitMQ only. The server's consumer_timeout (rabbitmq.conf, default 30 min): it
    # closes the channel of a delivery left unacknowledged longer. Declared here so a
    # TASK_TIME_LIMIT it would cut short is refused at start.
    broker_consumer_timeout: int = Field(default=1800, ge=1)

    # Off: users are created without a welcome email job (benchmarks compare both).
    send_welcome_email: bool = True
    # The welcome email's retry policy for transient failures.
    email_max_retries: int = Field(default=3, ge=0)
    email_retry_backoff: int = Field(default=2, ge=1)
    email_retry_backoff_max: int = Field(default=60, ge=1)
    email_retry_jitter: bool = True
    email_send_seconds: float = Field(default=1.0, ge=0)
    # Make the first N send attempts raise ConnectionError, to watch retries happen.
    email_simulated_failures: int = Field(default=0, ge=0)

    # The job ledger and its relay.
    job_max_worker_losses: int = Field(default=3, ge=1)
    job_lease_grace_seconds: int = Field(default=10, ge=1)
    # A queued job whose message no worker claimed this long after its publish is
    # published again: Redis can lose a message (a worker killed between taking it off
    # the queue and recording it as unacknowledged, or a crash without AOF). Keep it
    # above the longest queue wait you expect; a duplicate is only skipped, never run.
    job_republish_after_seconds: int = Field(default=600, ge=1)
    # An attempt cut short because the database or the broker went away is not the
    # task's failure: it runs again, apart from the task's own retries, up to this many
    # times, after a backoff that starts at JOB_INFRASTRUCTURE_BACKOFF_SECONDS and
    # doubles (with jitter) up to JOB_INFRASTRUCTURE_BACKOFF_MAX_SECONDS.
    job_infrastructure_retries: int = Field(default=20, ge=0)
    job_infrastructure_backoff_seconds: float = Field(default=1.0, gt=0)
    job_infrastructure_backoff_max_seconds: float = Field(default=60.0, gt=0)
    # A worker's ledger writes (claim, outcome) try again this long while the database
    # is away; past it, the lease takeover or a redelivery finishes the job.
    job_ledger_retry_seconds: float = Field(default=10.0, ge=0)
    relay_interval_seconds: float = Field(default=1.0, gt=0)
    relay_batch_size: int = Field(default=200, ge=1)
    # The API publishes right after commit; the relay leaves younger rows to it.
    relay_min_age_seconds: float = Field(default=2.0, ge=0)
    job_retention_days: float = Field(default=7, gt=0)
    failed_job_retention_days: float = Field(default=30, gt=0)
    prune_interval_seconds: float = Field(default=3600, gt=0)
    # Beat's backstop for the relay: re-queue and publish abandoned jobs this often.
    reaper_interval_seconds: float = Field(default=60, gt=0)

    # Worker probes: a heartbeat row per worker (and a file for the container's health
    # check) every WORKER_HEARTBEAT_SECONDS, written whether or not the broker answers.
    worker_heartbeat_seconds: float = Field(default=5.0, gt=0)
    # The liveness file; unset writes none (one worker per container sets it).
    worker_heartbeat_file: str | None = None
    # No heartbeat for this long: the worker is reported lost.
    worker_lost_after_seconds: float = Field(default=30.0, gt=0)
    # The worker's event loop has not turned for this long while connected: stalled.
    worker_loop_stall_seconds: float = Field(default=30.0, gt=0)
    # A job still running this long after it started, past the hard time limit when
    # unset, means the pool failed to kill it: the worker is reported stuck.
    worker_stuck_after_seconds: float | None = Field(default=None, gt=0)
    # A lost worker stays in the report this long, then its row is dropped.
    worker_forget_after_seconds: float = Field(default=3600.0, gt=0)

    # Bearer token for /api/v1/jobs; the endpoints are off while it is unset.
    admin_token: SecretStr | None = None
    # Origins a browser may call the API from (comma-separated in the environment);
    # none by default, so no other site's page can read the API's answers.
    backend_cors_origins: Annotated[list[str], NoDecode] = []

    max_request_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # A request body must have arrived this long after its request began, or the
    # request is answered 408: a client that trickles its body cannot hold the server.
    request_body_timeout_seconds: float = Field(default=10.0, gt=0)

    # Back-pressure on the endpoints that enqueue jobs. Each client (by IP) may make
    # RATE_LIMIT_BURST requests at once, then RATE_LIMIT_PER_SECOND; 0 turns it off.
    rate_limit_per_second: float = Field(default=20.0, ge=0)
    rate_limit_burst: int = Field(default=40, ge=1)
    # Where the buckets live, shared by every API process; unset: the broker's Redis.
    rate_limit_redis_url: str | None = None
    # Enqueueing answers 503 while this many jobs wait (queued or unpublished); 0: never.
    shed_queue_depth: int = Field(default=0, ge=0)

    @field_validator(
        "admin_token",
        "result_backend",
        "visibility_timeout",
        "worker_heartbeat_file",
        "worker_stuck_after_seconds",
        "rate_limit_redis_url",
        mode="before",
    )
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("backend_cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list):
            return value
        origins = []
        for given in value:
            origin = str(given).strip().rstrip("/")
            if not origin:
                continue
            if origin != "*" and not ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"BACKEND_CORS_ORIGINS: {origin!r} is not an origin like "
                    "https://app.example.com (scheme, host, optional port; no path), nor *"
                )
            origins.append(origin)
        return origins

    @model_validator(mode="after")
    def _check_time_limits(self) -> "Settings":
        if self.task_soft_time_limit >= self.task_time_limit:
            raise ValueError("TASK_SOFT_TIME_LIMIT must be below TASK_TIME_LIMIT")
        if (
            self.visibility_timeout is not None
            and self.visibility_timeout < 2 * self.task_time_limit
        ):
            raise ValueError(
                "VISIBILITY_TIMEOUT must be at least twice TASK_TIME_LIMIT, "
                "or a running task is redelivered to a second worker"
            )
        if self.broker_is_amqp:
            self._check_rabbitmq_limits()
        if self.failed_job_retention_days < self.job_retention_days:
            raise ValueError("FAILED_JOB_RETENTION_DAYS must not be below JOB_RETENTION_DAYS")
        if self.rate_limit_per_second > 0 and self.effective_rate_limit_redis_url is None:
            raise ValueError(
                "RATE_LIMIT_PER_SECOND needs a Redis: set RATE_LIMIT_REDIS_URL "
                "(the broker is not Redis), or RATE_LIMIT_PER_SECOND=0"
            )
        return self

    def _check_rabbitmq_limits(self) -> None:
        if self.broker_delivery_limit <= self.job_max_worker_losses:
            raise ValueError(
                "BROKER_DELIVERY_LIMIT must be above JOB_MAX_WORKER_LOSSES, or RabbitMQ "
                "dead-letters a crash-looping job's message before the ledger fails the job"
            )
        if self.broker_consumer_timeout <= self.task_time_limit:
            raise ValueError(
                "BROKER_CONSUMER_TIMEOUT must be above TASK_TIME_LIMIT, or RabbitMQ closes "
                "the channel of a running task and redelivers its message"
            )

    @property
    def broker_is_amqp(self) -> bool:
        return self.broker_url.startswith(("amqp://", "amqps://", "pyamqp://"))

    @property
    def effective_visibility_timeout(self) -> int:
        return self.visibility_timeout or 2 * self.task_time_limit

    @property
    def effective_rate_limit_redis_url(self) -> str | None:
        if self.rate_limit_redis_url is not None:
            return self.rate_limit_redis_url
        return self.broker_url if self.broker_url.startswith(REDIS_SCHEMES) else None

    @property
    def job_lease_seconds(self) -> int:
        """How long a started job belongs to its worker before another may take it over."""
        return self.task_time_limit + self.job_lease_grace_seconds

    @property
    def effective_worker_stuck_after_seconds(self) -> float:
        return self.worker_stuck_after_seconds or self.task_time_limit + 30.0


@lru_cache
def get_settings() -> Settings:
    return Settings()


settings = get_settings()
