"""The Celery application, built from `Settings`: wiring only, the engine does the rest.

Start a worker with `celery -A app.worker.celery_app worker -l info`. The API never
imports this module.
"""

from typing import Any

from celery.signals import setup_logging

from app import tasks
from app.core import db
from app.core.config import get_settings
from app.core.logging import configure_logging
from durable_jobs import create_celery

settings = get_settings()
celery_app = create_celery(settings, task_packages=[tasks.__name__], engine=db.engine)


@setup_logging.connect
def _use_our_logging(**_: Any) -> None:
    configure_logging(settings)
