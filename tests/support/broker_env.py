"""Which broker the run tests, read before the application is imported: TEST_BROKER is
redis (the default) or rabbitmq. On RabbitMQ each run gets a vhost of its own, made and
removed with rabbitmqctl (TEST_RABBITMQCTL), as the run's isolation."""

import os
import subprocess

import pytest

TEST_BROKER = os.environ.get("TEST_BROKER", "redis")
if TEST_BROKER not in ("redis", "rabbitmq"):
    raise RuntimeError(f"TEST_BROKER must be redis or rabbitmq, not {TEST_BROKER!r}")
ON_RABBITMQ = TEST_BROKER == "rabbitmq"
RABBITMQCTL = os.environ.get("TEST_RABBITMQCTL", "rabbitmqctl")

# The Redis that rate limits keep their buckets in, whatever the broker under test.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

redis_only = pytest.mark.skipif(ON_RABBITMQ, reason="Redis only")
rabbitmq_only = pytest.mark.skipif(not ON_RABBITMQ, reason="RabbitMQ only")


def default_server_url() -> str:
    """The shared broker the run isolates itself on (TEST_BROKER_URL overrides it; for
    RabbitMQ, without a vhost: the run adds its own)."""
    default = "amqp://guest:guest@127.0.0.1:5672" if ON_RABBITMQ else "redis://127.0.0.1:6379/0"
    return os.environ.get("TEST_BROKER_URL", default)


def rabbitmqctl(*args: str) -> str:
    done = subprocess.run(
        [RABBITMQCTL, *args], check=True, capture_output=True, text=True, timeout=60
    )
    return done.stdout


def create_vhost(vhost: str) -> None:
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")


def delete_vhost(vhost: str) -> None:
    rabbitmqctl("delete_vhost", vhost)
