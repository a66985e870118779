"""The engine of this process: settings, database, Celery app and publisher, built by
`create_celery`. Like Celery's current app, the latest one built is the process's."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from durable_jobs._db import Database
from durable_jobs._settings import JobsSettings

if TYPE_CHECKING:
    from celery import Celery
    from opentelemetry.trace import Tracer

    from durable_jobs._publisher import BackgroundPublisher


@dataclass
class Runtime:
    settings: JobsSettings
    database: Database
    celery: "Celery"
    publisher: "BackgroundPublisher"
    # None while TRACING is off: the per-job check of the tracing code.
    tracer: "Tracer | None" = None


_runtimes: list[Runtime] = []


def install(runtime: Runtime) -> None:
    _runtimes.append(runtime)


def uninstall(celery: "Celery") -> None:
    _runtimes[:] = [runtime for runtime in _runtimes if runtime.celery is not celery]


def current() -> Runtime:
    if not _runtimes:
        raise RuntimeError("durable_jobs is not set up: call create_celery(settings) first")
    return _runtimes[-1]


def all_runtimes() -> list[Runtime]:
    return list(_runtimes)


def settings() -> JobsSettings:
    return current().settings


@contextmanager
def transaction() -> Iterator[Session]:
    with current().database.transaction() as session:
        yield session


@contextmanager
def autocommit() -> Iterator[Connection]:
    with current().database.autocommit() as connection:
        yield connection
