"""The types of the root conftest's factory fixtures, for the tests that annotate them."""

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.support.runner import Process

# worker_factory(name="w1", concurrency=2, **settings): a real Celery worker.
WorkerFactory = Callable[..., Process]
# app_client(**settings): a client of an app built in process with other settings.
AppClientFactory = Callable[..., TestClient]
