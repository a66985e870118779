"""The one owner of the database engine and of transactions, for the API and the worker."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, create_engine, event, exc
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.core.config import get_settings

# A pooled connection idle longer than this is checked before use; busier ones are
# trusted, which saves a round trip on every transaction of a busy worker or API.
PING_AFTER_IDLE_SECONDS = 10.0

# PostgreSQL text cannot hold NUL: an input stored or compared as text must not carry one
# (else the driver fails and the request would end in a 500).
NO_NUL_PATTERN = r"^[^\x00]*$"

engine = create_engine(
    get_settings().database_url,
    pool_size=10,
    max_overflow=20,
    pool_recycle=1800,
    connect_args={"connect_timeout": 5},
)
# Single statements that need no transaction of their own: one round trip each.
autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
SessionFactory = sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


@contextmanager
def transaction() -> Iterator[Session]:
    """A session whose work commits when the block ends, or rolls back if it raises."""
    with SessionFactory() as session, session.begin():
        yield session


@contextmanager
def autocommit() -> Iterator[Connection]:
    """A connection on which each statement commits on its own."""
    with autocommit_engine.connect() as connection:
        yield connection


@event.listens_for(engine, "checkin")
def _remember_when_idle(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


@event.listens_for(engine, "checkout")
def _ping_if_idle_long(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    try:
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as error:
        # The pool discards this connection and hands out a fresh one.
        raise exc.DisconnectionError() from error
