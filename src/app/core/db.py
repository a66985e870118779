"""The one owner of the database engine and of transactions, for the API and the worker."""

import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.core.config import settings

# A pooled connection idle longer than this is checked before use; busier ones are
# trusted, which saves a round trip on every transaction of a busy worker or API.
PING_AFTER_IDLE_SECONDS = 10.0

# PostgreSQL text cannot hold NUL: an input stored or compared as text must not carry one
# (else the driver fails and the request would end in a 500).
NO_NUL_PATTERN = r"^[^\x00]*$"

engine = create_engine(
    settings.database_url,
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
def _check_alive(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Hand out no connection the server has hung up on (a restart, a crash, an admin's
    terminate), without a round trip; ping the ones idle long enough to have died
    silently. The pool replaces a dead one with a fresh connection."""
    if _server_hung_up(dbapi_connection):
        raise exc.DisconnectionError("the server closed the connection")
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    try:
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as error:
        # The pool discards this connection and hands out a fresh one.
        raise exc.DisconnectionError() from error


def _server_hung_up(dbapi_connection: Any) -> bool:
    """An idle connection's socket is readable only if the server sent something
    unasked: the FATAL notice of a shutdown, or end of file."""
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except Exception:  # the driver already knows the connection is closed
        return True
    return bool(readable)


def libpq_dsn(database_url: str = settings.database_url) -> str:
    """The database URL as plain psycopg takes it, for connections kept off the pool."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)
