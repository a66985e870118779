"""docker-compose.yml passes the settings through instead of restating them."""

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
APP_IMAGE = "${APP_IMAGE:-fastapi-durable-jobs:latest}"
# What must differ in a container from a .env written for `make dev`.
CONTAINER_ONLY = {
    "ENVIRONMENT",
    "LOG_FORMAT",
    "DATABASE_URL",
    "BROKER_URL",
    "RATE_LIMIT_REDIS_URL",
    "FLOWER_BASIC_AUTH",
    "WORKER_HEARTBEAT_FILE",
}


def services(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return loaded["services"]  # type: ignore[no-any-return]


def test_every_app_container_reads_the_env_file_and_sets_only_what_differs() -> None:
    app_services = {
        n: s for n, s in services("docker-compose.yml").items() if s["image"] == APP_IMAGE
    }

    assert set(app_services) == {"migrate", "api", "worker", "relay", "flower"}
    for name, service in app_services.items():
        assert service["env_file"] == "${ENV_FILE:-.env}", name
        assert set(service["environment"]) <= CONTAINER_ONLY, name
        assert service["environment"]["LOG_FORMAT"] == "json", name


def test_no_secret_has_a_default() -> None:
    text = (ROOT / "docker-compose.yml").read_text()

    for secret in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "RABBITMQ_PASSWORD", "FLOWER_BASIC_AUTH"):
        assert f"${{{secret}:-" not in text, secret
        assert f"${{{secret}:?" in text, secret


def test_the_local_services_listen_on_loopback_only() -> None:
    for name, service in services("docker-compose.services.yml").items():
        assert all(str(port).startswith("127.0.0.1:") for port in service["ports"]), name
