"""Logging shared by the API, the worker and the relay: readable text for a terminal,
one JSON object per line for containers, and on every line of a job or request the
ids that tie it together."""

import json
import logging
from datetime import UTC, datetime

from app.core.config import Settings
from durable_jobs import job_id_var, request_id_var

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(processName)s] %(name)s: %(message)s%(context)s"

__all__ = ["ContextFilter", "JsonFormatter", "configure_logging", "job_id_var", "request_id_var"]


class ContextFilter(logging.Filter):
    """Put the current request and job ids on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.job_id = job_id_var.get()
        parts = [f"{key}={value}" for key, value in _context(record).items()]
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level)
    # One line per HTTP call made by a client library is noise in these logs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)


def _context(record: logging.LogRecord) -> dict[str, str]:
    ids = {
        "job_id": getattr(record, "job_id", None),
        "request_id": getattr(record, "request_id", None),
    }
    return {key: value for key, value in ids.items() if value}
