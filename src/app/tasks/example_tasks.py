"""Tasks of the users domain. Each takes ids, re-reads its rows and may run twice."""

import logging
import time

from sqlalchemy import func

from app.core.config import get_settings
from app.core.db import transaction
from app.models.user import User
from durable_jobs import FromSettings, task

logger = logging.getLogger(__name__)


@task(
    "users.send_welcome_email",
    retry_for=(ConnectionError,),
    retries=FromSettings("email_max_retries"),
    backoff=FromSettings("email_retry_backoff"),
    backoff_max=FromSettings("email_retry_backoff_max"),
    jitter=FromSettings("email_retry_jitter"),
)
def send_welcome_email(user_id: int) -> str:
    """Send the welcome email once; a user already welcomed or deleted is skipped."""
    settings = get_settings()
    attempt = send_welcome_email.request.retries + 1
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
