"""The engine's own transactions (claims, outcomes, the relay), on the host's SQLAlchemy
engine when it passes one, so both share one pool."""

import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

# A pooled connection idle longer than this is pinged before use; busier ones are
# trusted, which saves a round trip on every transaction of a busy worker or API.
PING_AFTER_IDLE_SECONDS = 10.0


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        watch_connections(engine)
        # Single statements that need no transaction of their own: one round trip each.
        self._autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, database_url: str) -> "Database":
        engine = create_engine(
            database_url,
            pool_size=10,
            max_overflow=20,
            pool_recycle=1800,
            connect_args={"connect_timeout": 5},
        )
        return cls(engine)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits when the block ends, or rolls back if it raises."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection on which each statement commits on its own."""
        with self._autocommit_engine.connect() as connection:
            yield connection


def watch_connections(engine: Engine) -> None:
    """Hand out no pooled connection the server has hung up on (a restart, a crash, an
    admin's terminate), seen without a round trip, and ping the ones idle long enough
    to have died silently: the pool replaces a dead one with a fresh connection, so the
    first use after a database restart does not fail."""
    if not event.contains(engine, "checkout", _check_alive):
        event.listen(engine, "checkin", _remember_when_idle)
        event.listen(engine, "checkout", _check_alive)


def _remember_when_idle(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _check_alive(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    if _server_hung_up(dbapi_connection):
        raise exc.DisconnectionError("the server closed the connection")
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    try:
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as error:
        raise exc.DisconnectionError() from error


def _server_hung_up(dbapi_connection: Any) -> bool:
    """An idle connection's socket is readable only if the server sent something
    unasked: the FATAL notice of a shutdown, or end of file."""
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except Exception:  # the driver already knows the connection is closed
        return True
    return bool(readable)


def libpq_dsn(database_url: str) -> str:
    """The database URL as plain psycopg takes it, for connections kept off the pool."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)
