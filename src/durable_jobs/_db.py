"""The engine's own transactions (claims, outcomes, the relay), on the host's SQLAlchemy
engine when it passes one, so both share one pool."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
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
            pool_pre_ping=True,
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


def libpq_dsn(database_url: str) -> str:
    """The database URL as plain psycopg takes it, for connections kept off the pool."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)
