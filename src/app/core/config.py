"""The service's one settings object, read from the environment and `.env`.

It extends the engine's `JobsSettings`, so every engine default is stated once, there.
"""

import os
import re
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from durable_jobs import JobsSettings

REDIS_SCHEMES = ("redis://", "rediss://")
# An origin as browsers send it: scheme, host and optional port, no path.
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


class Settings(JobsSettings):
    # APP_ENV_FILE names another file to read instead of `.env`; empty reads none.
    model_config = SettingsConfigDict(
        env_file=os.environ.get("APP_ENV_FILE", ".env") or None, extra="ignore"
    )

    environment: Literal["development", "test", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # text for a terminal (make dev), json for containers and log collectors.
    log_format: Literal["text", "json"] = "text"

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
    def _check_rate_limit(self) -> "Settings":
        if self.rate_limit_per_second > 0 and self.effective_rate_limit_redis_url is None:
            raise ValueError(
                "RATE_LIMIT_PER_SECOND needs a Redis: set RATE_LIMIT_REDIS_URL "
                "(the broker is not Redis), or RATE_LIMIT_PER_SECOND=0"
            )
        return self

    @property
    def effective_rate_limit_redis_url(self) -> str | None:
        if self.rate_limit_redis_url is not None:
            return self.rate_limit_redis_url
        return self.broker_url if self.broker_url.startswith(REDIS_SCHEMES) else None


@lru_cache
def get_settings() -> Settings:
    return Settings()
