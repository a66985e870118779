"""Logging shared by the API, the worker and the relay: readable text for a terminal,
one JSON object per line for containers, and on every line of a job or request the
ids that tie it together.

Every line goes through the root logger's one handler, uvicorn's own included (its
loggers keep handlers of their own unless told otherwise), so with LOG_FORMAT=json
no line of the process is text. Fields passed with `extra=` are kept in JSON.
"""

import logging
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

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


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: time (UTC), level, logger, process, message, the ids,
    the exception if any, and every `extra=` field."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "processName", "message"],
            rename_fields={
                "levelname": "level",
                "name": "logger",
                "processName": "process",
                "exc_info": "exception",
            },
            # `context` is the text format's rendering of the ids.
            reserved_attrs=[*RESERVED_ATTRS, "context"],
            timestamp="time",
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        for key in ("job_id", "request_id"):
            if log_data.get(key) is None:
                log_data.pop(key, None)
        return log_data


class AccessFields(logging.Filter):
    """uvicorn's access lines as fields too: client, method, path, status_code."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _, status_code = record.args
            record.client, record.method, record.path = client, method, path
            record.status_code = status_code
        return True


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
    # uvicorn's loggers (configured before the app is loaded) write through ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessFields) for f in access.filters):
        access.addFilter(AccessFields())
    # Warnings become log lines instead of text on stderr.
    logging.captureWarnings(True)
    # One line per HTTP call made by a client library is noise in these logs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)


def _context(record: logging.LogRecord) -> dict[str, str]:
    ids = {
        "job_id": getattr(record, "job_id", None),
        "request_id": getattr(record, "request_id", None),
    }
    return {key: value for key, value in ids.items() if value}
