"""The run's isolation: a database and a broker namespace of its own, named after RUN_ID.

`TEST_ENVIRONMENT` is what the root conftest puts in `os.environ` before the application
is imported, so every process the tests start (workers, relays, API servers) inherits
the same isolated settings. Importing this module changes nothing: the conftest applies it.
"""

import os
import uuid

from tests.support.broker_env import ON_RABBITMQ, default_server_url

RUN_ID = uuid.uuid4().hex[:10]
# Redis: a queue and broadcast prefix of the run's own; RabbitMQ: a vhost of its own.
RABBITMQ_VHOST = f"durable-jobs-test-{RUN_ID}"
BROKER_URL = f"{default_server_url()}/{RABBITMQ_VHOST}" if ON_RABBITMQ else default_server_url()
DATABASE_SERVER = os.environ.get(
    "TEST_DATABASE_SERVER", "postgresql+psycopg://postgres@127.0.0.1:5432"
)
ADMIN_TOKEN = "test-admin-token"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

TEST_ENVIRONMENT = {
    "APP_ENV_FILE": "",
    "ENVIRONMENT": "test",
    "LOG_LEVEL": "INFO",
    "DATABASE_URL": f"{DATABASE_SERVER}/durable_jobs_test_{RUN_ID}",
    "BROKER_URL": BROKER_URL,
    "BROKER_BROADCAST_PREFIX": f"test-{RUN_ID}",
    "TASK_DEFAULT_QUEUE": f"test-{RUN_ID}",
    "ADMIN_TOKEN": ADMIN_TOKEN,
    "EMAIL_SEND_SECONDS": "0.05",
    "TASK_TIME_LIMIT": "10",
    "TASK_SOFT_TIME_LIMIT": "8",
    "JOB_LEASE_GRACE_SECONDS": "2",
    "RELAY_INTERVAL_SECONDS": "0.2",
    "RELAY_MIN_AGE_SECONDS": "0.5",
    "JOB_REPUBLISH_AFTER_SECONDS": "30",
    "WORKER_HEARTBEAT_SECONDS": "0.5",
    "WORKER_LOST_AFTER_SECONDS": "5",
    # Most tests send many requests from one client; the back-pressure tests set their own.
    "RATE_LIMIT_PER_SECOND": "0",
    "SHED_QUEUE_DEPTH": "0",
}
