"""Settings refuse combinations that would make jobs unsafe, at start-up."""

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import Settings
from durable_jobs._celery import build_celery_config

REDIS_URL = "redis://127.0.0.1:6379/0"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
EXAMPLE_LINE = re.compile(r"^# ([A-Z][A-Z0-9_]*)=(.*)$", re.MULTILINE)
# Variables of .env.example that docker-compose.yml reads, not the app.
COMPOSE_ONLY = {"API_PORT", "FLOWER_PORT", "WORKER_CONCURRENCY", "APP_IMAGE"}


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_a_visibility_timeout_below_twice_the_hard_limit_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least twice TASK_TIME_LIMIT"):
        settings(task_time_limit=60, task_soft_time_limit=50, visibility_timeout=119)


def test_a_soft_limit_at_or_above_the_hard_limit_is_refused() -> None:
    with pytest.raises(ValidationError, match="must be below TASK_TIME_LIMIT"):
        settings(task_time_limit=60, task_soft_time_limit=60)


def test_failed_jobs_are_never_kept_shorter_than_finished_ones() -> None:
    with pytest.raises(ValidationError, match="FAILED_JOB_RETENTION_DAYS"):
        settings(job_retention_days=30, failed_job_retention_days=7)


def test_empty_optional_values_mean_unset() -> None:
    configured = settings(admin_token="", result_backend="", visibility_timeout="")

    assert configured.admin_token is None
    assert configured.result_backend is None
    assert configured.effective_visibility_timeout == 2 * configured.task_time_limit


def test_the_celery_config_carries_the_safety_settings() -> None:
    config = build_celery_config(
        settings(broker_url=REDIS_URL, task_time_limit=30, task_soft_time_limit=20)
    )

    assert config["accept_content"] == ["json"]
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1
    assert config["broker_transport_options"]["visibility_timeout"] == 60
    assert config["broker_transport_options"]["socket_timeout"] > 1
    assert config["task_create_missing_queues"] is False


def test_rabbitmq_gets_confirms_bounded_sockets_and_a_quorum_queue_with_dead_letters() -> None:
    config = build_celery_config(settings(broker_url=RABBITMQ_URL, task_default_queue="q"))

    options = config["broker_transport_options"]
    assert options["confirm_publish"] is True
    assert options["read_timeout"] > 1 and options["write_timeout"] > 1
    assert config["broker_connection_timeout"] > 0
    [queue] = config["task_queues"]
    assert queue.exchange.type == "topic", "native delayed delivery needs a topic exchange"
    assert queue.queue_arguments["x-queue-type"] == "quorum"
    assert queue.queue_arguments["x-dead-letter-exchange"] == "q.dead"
    assert queue.queue_arguments["x-delivery-limit"] == 10
    assert "visibility_timeout" not in options


def test_a_delivery_limit_the_ledger_would_not_reach_first_is_refused() -> None:
    with pytest.raises(ValidationError, match="BROKER_DELIVERY_LIMIT must be above"):
        settings(broker_url=RABBITMQ_URL, job_max_worker_losses=3, broker_delivery_limit=3)


def test_a_rabbitmq_consumer_timeout_within_the_hard_limit_is_refused() -> None:
    with pytest.raises(ValidationError, match="BROKER_CONSUMER_TIMEOUT must be above"):
        settings(broker_url=RABBITMQ_URL, task_time_limit=1800, task_soft_time_limit=1700)


def test_rabbitmq_limits_do_not_bind_a_redis_deployment() -> None:
    configured = settings(broker_url=REDIS_URL, task_time_limit=3600, task_soft_time_limit=3500)

    assert configured.task_time_limit > configured.broker_consumer_timeout


def test_rate_limits_use_the_brokers_redis_unless_told_otherwise() -> None:
    assert settings(broker_url=REDIS_URL).effective_rate_limit_redis_url == REDIS_URL
    own = settings(broker_url=REDIS_URL, rate_limit_redis_url="redis://127.0.0.1:6380/2")

    assert own.effective_rate_limit_redis_url == "redis://127.0.0.1:6380/2"


def test_rate_limits_without_a_redis_are_refused() -> None:
    rabbitmq = "amqp://guest:guest@127.0.0.1:5672//"
    with pytest.raises(ValidationError, match="RATE_LIMIT_REDIS_URL"):
        settings(broker_url=rabbitmq, rate_limit_per_second=5)

    assert settings(broker_url=rabbitmq, rate_limit_per_second=0).rate_limit_per_second == 0


def test_cors_origins_are_read_comma_separated_and_checked() -> None:
    assert settings().backend_cors_origins == []
    assert settings(
        backend_cors_origins=" https://a.example.com/, http://localhost:5173 ,"
    ).backend_cors_origins == [
        "https://a.example.com",
        "http://localhost:5173",
    ]
    with pytest.raises(ValidationError, match="is not an origin like"):
        settings(backend_cors_origins="https://a.example.com/path")


def test_cors_origins_come_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BACKEND_CORS_ORIGINS", "https://a.example.com,https://b.example.com")

    assert settings().backend_cors_origins == ["https://a.example.com", "https://b.example.com"]


def test_env_example_lists_every_setting_with_its_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """.env.example restates no default of its own: each value it shows is Settings'."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    shown = dict(EXAMPLE_LINE.findall(ENV_EXAMPLE.read_text()))
    variables = {name.upper(): name for name in Settings.model_fields}

    missing = sorted(set(variables) - set(shown))
    example = settings(**{variables[v]: value for v, value in shown.items() if v in variables})

    assert not missing, f".env.example does not list {missing}"
    assert set(shown) - set(variables) == COMPOSE_ONLY
    for name, field in Settings.model_fields.items():
        assert getattr(example, name) == field.default, f"{name.upper()}: not the default"


def test_the_configuration_guide_explains_every_setting() -> None:
    guide = (ENV_EXAMPLE.parent / "docs" / "configuration.md").read_text()

    missing = [n.upper() for n in Settings.model_fields if f"`{n.upper()}`" not in guide]

    assert not missing, f"docs/configuration.md does not explain {missing}"
