"""The engine's settings: what the ledger, the relay, the broker and the workers need.

A host app subclasses `JobsSettings` with its own fields (or builds one directly) and
passes the object to `create_celery`; nothing here reads the environment at import.
"""

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

# libpq's names for the TLS parameters of a PostgreSQL connection.
DATABASE_TLS_PARAMETERS = ("sslmode", "sslrootcert", "sslcert", "sslkey")

AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")


class JobsSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/app"
    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend: str | None = None
    # Separates this deployment's broadcasts (worker inspection, events) from others
    # sharing the Redis database; give each its own TASK_DEFAULT_QUEUE as well.
    broker_broadcast_prefix: str = ""
    task_default_queue: str = "default"

    # TLS to PostgreSQL, in libpq's terms: DATABASE_SSLMODE=verify-full checks the
    # server's certificate against DATABASE_SSLROOTCERT (a CA file) and its host name;
    # DATABASE_SSLCERT and DATABASE_SSLKEY are a client certificate where the server
    # asks for one. They are added to DATABASE_URL's query, so every connection (the
    # pools, the worker probe's, beat's, the migrations') uses them.
    database_sslmode: (
        Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None
    ) = None
    database_sslrootcert: str | None = None
    database_sslcert: str | None = None
    database_sslkey: str | None = None
    # TLS to the broker (a rediss:// or amqps:// BROKER_URL), to a rediss:// result
    # backend and to the rate limiter's rediss:// Redis: the CA file that signed their
    # certificates (unset: the system's CAs), and a client certificate and key where the
    # server asks for one. The host name is always checked against the certificate.
    broker_tls_ca_file: str | None = None
    broker_tls_cert_file: str | None = None
    broker_tls_key_file: str | None = None

    # OpenTelemetry traces: the HTTP request, the enqueue, each publish and each run of
    # a job in one trace. Off by default, and then nothing is set up. On, spans go to the
    # tracer provider the host has set, or else the engine sets up the SDK (the extra
    # durable-jobs[otlp]) exporting OTLP over HTTP to OTEL_EXPORTER_OTLP_ENDPOINT.
    tracing: bool = False
    otel_exporter_otlp_endpoint: str = "http://127.0.0.1:4318"
    otel_service_name: str = "durable-jobs"

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
    # A task's return value is kept in the ledger as JSON up to this size; a bigger one
    # (or one that is not JSON) fails the job, saying so.
    job_result_max_bytes: int = Field(default=65536, ge=0)
    # report_progress writes to the ledger at most this often per job (the last step,
    # done == total, always), and notices a cancel request when it writes.
    job_progress_interval_seconds: float = Field(default=1.0, ge=0)
    # A running job asked to cancel that has not stopped at report_progress this long
    # after the request is stopped by terminating its pool process.
    job_cancel_grace_seconds: float = Field(default=30.0, ge=0)
    relay_interval_seconds: float = Field(default=1.0, gt=0)
    relay_batch_size: int = Field(default=200, ge=1)
    # The API publishes right after commit; the relay leaves younger rows to it.
    relay_min_age_seconds: float = Field(default=2.0, ge=0)
    job_retention_days: float = Field(default=7, gt=0)
    failed_job_retention_days: float = Field(default=30, gt=0)
    # The pruner and the reaper are periodic schedules (jobs.prune_finished,
    # jobs.reap_abandoned) that every relay keeps at these intervals.
    prune_interval_seconds: float = Field(default=3600, gt=0)
    # The reaper re-queues and publishes abandoned jobs from a worker, a backstop beside
    # the relay's own sweep.
    reaper_interval_seconds: float = Field(default=60, gt=0)
    # A periodic schedule's tick this late (the relays were down) is missed: it runs once
    # afterwards or is skipped, as the schedule says.
    schedule_misfire_grace_seconds: float = Field(default=60, gt=0)

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
    # The worker's main process serves its metrics (summed over its pool processes) on
    # this port at /metrics; 0 serves none. One port per worker on a host.
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)

    @field_validator(
        "result_backend",
        "visibility_timeout",
        "worker_heartbeat_file",
        "worker_stuck_after_seconds",
        "database_sslmode",
        "database_sslrootcert",
        "database_sslcert",
        "database_sslkey",
        "broker_tls_ca_file",
        "broker_tls_cert_file",
        "broker_tls_key_file",
        mode="before",
    )
    @classmethod
    def _empty_engine_setting_means_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator(
        "database_sslrootcert",
        "database_sslcert",
        "database_sslkey",
        "broker_tls_ca_file",
        "broker_tls_cert_file",
        "broker_tls_key_file",
    )
    @classmethod
    def _certificate_file_exists(cls, value: str | None) -> str | None:
        # Said at start, not as a handshake failure on the first connection.
        if value is not None and not Path(value).is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _add_database_tls_to_url(self) -> "JobsSettings":
        given = {
            name: value
            for name in DATABASE_TLS_PARAMETERS
            if (value := getattr(self, f"database_{name}")) is not None
        }
        if not given:
            return self
        url = make_url(self.database_url)
        for name, value in given.items():
            if url.query.get(name, value) != value:
                raise ValueError(
                    f"DATABASE_{name.upper()} says {value!r} but DATABASE_URL's query says "
                    f"{url.query[name]!r}: set it in one place"
                )
        self.database_url = url.update_query_dict(given).render_as_string(hide_password=False)
        return self

    @model_validator(mode="after")
    def _check_time_limits(self) -> "JobsSettings":
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
        return self.broker_url.startswith(AMQP_SCHEMES)

    @property
    def broker_uses_tls(self) -> bool:
        return self.broker_url.startswith(("rediss://", "amqps://"))

    @property
    def effective_visibility_timeout(self) -> int:
        return self.visibility_timeout or 2 * self.task_time_limit

    @property
    def job_lease_seconds(self) -> int:
        """How long a started job belongs to its worker before another may take it over."""
        return self.task_time_limit + self.job_lease_grace_seconds

    @property
    def effective_worker_stuck_after_seconds(self) -> float:
        return self.worker_stuck_after_seconds or self.task_time_limit + 30.0
