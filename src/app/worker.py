"""The Celery application, built from `Settings`: wiring only, the engine does the rest.

Start a worker with `celery -A app.worker.celery_app worker -l info`. The API never
imports this module.
"""

import logging
from typing import Any

import celery.apps.worker
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


def _say_through_logging(message: str, *_: Any) -> None:
    """Celery writes its shutdown notices straight to the console, past logging: as log
    lines they stay JSON in containers. (They are said from a signal handler; logging's
    handler lock is reentrant, so the worst case is one line cut by another.)"""
    logging.getLogger("celery.apps.worker").info(message)


celery.apps.worker.safe_say = _say_through_logging  # type: ignore[attr-defined]
