"""Logging set-up shared by the API, the worker and the relay."""

import logging

from app.core.config import settings

LOG_FORMAT = "%(asctime)s %(levelname)s [%(processName)s] %(name)s: %(message)s"


def configure_logging() -> None:
    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT)
    logging.getLogger("app").setLevel(settings.log_level)
    # One line per HTTP call made by a client library is noise in these logs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
