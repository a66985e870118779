"""TLS to Redis and PostgreSQL with a CA of the test's own: the API and a worker reach
both over TLS only, and a server whose certificate another CA signed is refused."""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pydantic
import pytest
import redis
from celery import Celery

from durable_jobs import JobsSettings, redis_client_options
from durable_jobs._broker import queue_depths
from durable_jobs._celery import build_celery_config
from durable_jobs._db import libpq_dsn
from tests.support.launchers import start_api, start_worker
from tests.support.ledger import new_user_payload
from tests.support.runner import ROOT, VENV_BIN, Process, child_env, wait_until
from tests.support.servers import (
    RABBITMQ_SERVER,
    PrivatePostgres,
    PrivateRedis,
    private_rabbitmq,
    private_redis,
)
from tests.support.tls import Certificates, make_certificates

pytestmark = pytest.mark.slow


def skip_without(programs: dict[str, bool]) -> None:
    """Skip, saying what to install, where a server program is missing (never in CI)."""
    missing = [name for name, found in programs.items() if not found]
    if missing and not os.environ.get("CI"):
        pytest.skip(
            f"needs {', '.join(missing)} on this machine (the TLS servers are private)",
            allow_module_level=True,
        )


skip_without(
    {
        "redis-server": shutil.which("redis-server") is not None,
        "openssl": shutil.which("openssl") is not None,
        "PostgreSQL's initdb": bool(
            shutil.which("initdb") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        ),
    }
)

ADMIN_HEADERS = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_redis(certificates: Certificates) -> Iterator[PrivateRedis]:
    with private_redis(appendonly=False, tls=certificates) as server:
        yield server


@pytest.fixture(scope="module")
def tls_postgres(certificates: Certificates) -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.require_tls(certificates)
    try:
        server.start()
        yield server
    finally:
        server.remove()


def tls_settings_env(redis_url: str, database_url: str, ca: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "DATABASE_SSLMODE": "verify-full",
        "DATABASE_SSLROOTCERT": str(ca),
        "BROKER_URL": redis_url,
        "BROKER_TLS_CA_FILE": str(ca),
    }


def test_servers_take_tls_connections_only(
    tls_redis: PrivateRedis, tls_postgres: PrivatePostgres
) -> None:
    """The checks below prove TLS only because plain connections are refused."""
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(libpq_dsn(tls_postgres.url("postgres")) + "?sslmode=disable")
    plain = redis.Redis(port=tls_redis.port, socket_timeout=2)
    with pytest.raises(redis.ConnectionError):
        plain.ping()


def test_api_and_worker_reach_redis_and_postgresql_over_tls(
    tls_redis: PrivateRedis, tls_postgres: PrivatePostgres, certificates: Certificates
) -> None:
    env = child_env(
        {
            **tls_settings_env(
                tls_redis.url, tls_postgres.url("durable_jobs_tls"), certificates.ca
            ),
            # The rate limiter's Redis is the broker's: over TLS too.
            "RATE_LIMIT_PER_SECOND": "100",
        }
    )
    migrate = subprocess.run(
        [sys.executable, "-m", "app.core.migrate"], env=env, cwd=ROOT, capture_output=True
    )
    assert migrate.returncode == 0, migrate.stderr.decode()
    worker = start_worker("tls", env, concurrency=1, celery_app="app.worker.celery_app")
    api, base_url = start_api(env)
    try:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            assert client.get("/api/v1/health/ready").status_code == 200
            created = client.post("/api/v1/users", json=new_user_payload())
            assert created.status_code == 201, created.text
            job_id = created.json()["welcome_email_job_id"]

            def job_state() -> str:
                job = client.get(f"/api/v1/jobs/{job_id}", headers=ADMIN_HEADERS).json()
                return str(job["state"])

            wait_until(lambda: job_state() == "succeeded", 30, what="the job to succeed")
            # The worker's probe writes its heartbeat on connections of its own.
            workers = client.get("/api/v1/health/workers").json()
            assert [w["state"] for w in workers["workers"]] == ["ok"], workers
        assert "Rate limiting paused" not in api.log()
    finally:
        api.stop()
        worker.stop()


def test_a_server_certificate_from_another_ca_is_refused(
    tls_redis: PrivateRedis, tls_postgres: PrivatePostgres, certificates: Certificates
) -> None:
    settings = JobsSettings(
        **{
            name.lower(): value
            for name, value in tls_settings_env(
                tls_redis.url, tls_postgres.url("postgres"), certificates.other_ca
            ).items()
        }
    )

    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(libpq_dsn(settings.database_url), connect_timeout=5)
    client = redis.Redis.from_url(
        settings.broker_url, **redis_client_options(settings, settings.broker_url)
    )
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        client.ping()
    with broker_connection(settings) as connection:
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            connection.ensure_connection(max_retries=0, timeout=5)


def test_the_api_says_why_it_cannot_reach_servers_it_does_not_trust(
    tls_redis: PrivateRedis, tls_postgres: PrivatePostgres, certificates: Certificates
) -> None:
    env = child_env(
        tls_settings_env(tls_redis.url, tls_postgres.url("postgres"), certificates.other_ca)
    )
    api, base_url = start_api(env)
    try:
        response = httpx.get(f"{base_url}/api/v1/health/ready", timeout=10)
    finally:
        api.stop()

    assert response.status_code == 503
    assert "certificate verify failed" in response.json()["database"]["error"]
    assert response.json()["broker"]["ok"] is False


def test_a_worker_says_why_it_cannot_reach_a_broker_it_does_not_trust(
    tls_redis: PrivateRedis, tls_postgres: PrivatePostgres, certificates: Certificates
) -> None:
    env = child_env(
        tls_settings_env(tls_redis.url, tls_postgres.url("postgres"), certificates.other_ca)
    )
    argv = [str(VENV_BIN / "celery"), "-A", "app.worker.celery_app", "worker", "-c", "1"]
    worker = Process("worker-untrusted", argv, env)
    try:
        wait_until(
            lambda: "Cannot connect to rediss://" in worker.log(), 30, what="the worker to say"
        )
    finally:
        worker.stop()

    assert "CERTIFICATE_VERIFY_FAILED" in worker.log()


def test_rabbitmq_over_tls(certificates: Certificates) -> None:
    """The amqps:// options: a connection and a queue-depth read with the test's CA, a
    refusal with another."""
    skip_without({"rabbitmq-server": Path(RABBITMQ_SERVER).exists()})
    with private_rabbitmq(tls=certificates) as rabbitmq:
        trusted = JobsSettings(broker_url=rabbitmq.tls_url, broker_tls_ca_file=str(certificates.ca))
        untrusted = trusted.model_copy(update={"broker_tls_ca_file": str(certificates.other_ca)})

        assert queue_depths(trusted, ["tls-check"]) == {"tls-check": 0}
        with broker_connection(trusted) as connection:
            connection.ensure_connection(max_retries=0, timeout=5)
        with broker_connection(untrusted) as connection:
            with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
                connection.ensure_connection(max_retries=0, timeout=5)


def broker_connection(settings: JobsSettings) -> Any:
    celery = Celery(set_as_current=False)
    celery.conf.update(build_celery_config(settings))
    return celery.connection_for_write()


def test_a_missing_certificate_file_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match="no such file"):
        JobsSettings(broker_tls_ca_file=str(tmp_path / "missing.pem"))


def test_database_tls_settings_reach_the_url() -> None:
    settings = JobsSettings(
        database_url="postgresql+psycopg://app@db.internal:5432/app",
        database_sslmode="verify-full",
    )

    assert settings.database_url.endswith("/app?sslmode=verify-full")
    with pytest.raises(pydantic.ValidationError, match="set it in one place"):
        JobsSettings(
            database_url="postgresql+psycopg://app@db/app?sslmode=disable",
            database_sslmode="verify-full",
        )
