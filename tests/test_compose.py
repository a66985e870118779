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
    "WORKER_METRICS_PORT",
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


def test_prometheus_scrapes_the_api_and_every_worker_where_they_listen() -> None:
    compose = services("docker-compose.yml")
    config = yaml.safe_load((ROOT / "monitoring/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}

    assert compose["prometheus"]["profiles"] == ["monitoring"]
    assert jobs["durable-jobs-api"]["static_configs"] == [{"targets": ["api:8000"]}]
    assert '--port", "8000' in str(compose["api"]["command"]).replace("'", '"')
    workers = jobs["durable-jobs-worker"]["dns_sd_configs"]
    assert workers == [{"names": ["worker"], "type": "A", "port": 9808, "refresh_interval": "10s"}]
    assert compose["worker"]["environment"]["WORKER_METRICS_PORT"] == "9808"
    assert all(str(port).startswith("127.0.0.1:") for port in compose["prometheus"]["ports"])
