"""Tasks of the users domain. Each takes ids, re-reads its rows and may run twice."""

import logging
import time

from celery import Task
from sqlalchemy import func

from app.core.config import settings
from app.core.db import transaction
from app.models.user import User
from app.tasks.catalog import SEND_WELCOME_EMAIL
from app.worker import celery_app

logger = logging.getLogger(__name__)


@celery_app.task(
    name=SEND_WELCOME_EMAIL.name,
    bind=True,
    autoretry_for=(ConnectionError,),
    max_retries=SEND_WELCOME_EMAIL.max_retries,
    retry_backoff=settings.email_retry_backoff,
    retry_backoff_max=settings.email_retry_backoff_max,
    retry_jitter=settings.email_retry_jitter,
)
def send_welcome_email(self: Task, user_id: int) -> str:  # type: ignore[type-arg]
    """Send the welcome email once; a user already welcomed or deleted is skipped."""
    attempt = self.request.retries + 1
    logger.info("Sending welcome email to user %s (attempt %d)", user_id, attempt)
    with transaction() as session:
        user = session.get(User, user_id, with_for_update=True)
        if user is None:
            logger.warning("User %s no longer exists; no welcome email", user_id)
            return "user gone"
        if user.welcome_email_sent_at is not None:
            logger.info("User %s was already welcomed; not sending twice", user_id)
            return "already sent"
        if attempt <= settings.email_simulated_failures:
            raise ConnectionError(
                f"simulated mail server outage (attempt {attempt} of "
                f"{settings.email_simulated_failures} set to fail)"
            )
        time.sleep(settings.email_send_seconds)
        user.welcome_email_sent_at = func.now()
        logger.info("Welcome email sent to %s (user %s)", user.email, user_id)
    return "sent"
