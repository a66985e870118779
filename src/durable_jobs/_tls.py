"""TLS to the broker, from the settings: the one place that turns the certificate
settings into what Celery, redis-py and py-amqp each take. (PostgreSQL's TLS settings
go into DATABASE_URL itself, which libpq reads on every connection.)"""

import ssl
from typing import Any
from urllib.parse import urlsplit

from durable_jobs._settings import JobsSettings


def redis_tls_options(settings: JobsSettings) -> dict[str, Any]:
    """redis-py's connection arguments for a rediss:// URL: the certificate is required
    and its host name checked (the kombu transport and Celery's backend pass them on)."""
    options: dict[str, Any] = {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_check_hostname": True,
        "ssl_ca_certs": settings.broker_tls_ca_file,
    }
    if settings.broker_tls_cert_file is not None:
        options["ssl_certfile"] = settings.broker_tls_cert_file
        options["ssl_keyfile"] = settings.broker_tls_key_file
    return options


def redis_client_options(settings: JobsSettings, redis_url: str) -> dict[str, Any]:
    """Extra arguments for `redis.Redis.from_url(redis_url)`: the TLS ones for rediss://,
    none for redis:// (which refuses them)."""
    return redis_tls_options(settings) if redis_url.startswith("rediss://") else {}


def amqp_tls_options(settings: JobsSettings) -> dict[str, Any]:
    """py-amqp's `ssl` options for amqps://, with the host name checked (SNI)."""
    options: dict[str, Any] = {
        "cert_reqs": ssl.CERT_REQUIRED,
        "ca_certs": settings.broker_tls_ca_file,
        "server_hostname": urlsplit(settings.broker_url).hostname,
    }
    if settings.broker_tls_cert_file is not None:
        options["certfile"] = settings.broker_tls_cert_file
        options["keyfile"] = settings.broker_tls_key_file
    return options


def broker_use_ssl(settings: JobsSettings) -> dict[str, Any] | None:
    """Celery's `broker_use_ssl`: None unless the broker URL asks for TLS."""
    if settings.broker_url.startswith("rediss://"):
        return redis_tls_options(settings)
    if settings.broker_url.startswith("amqps://"):
        return amqp_tls_options(settings)
    return None
