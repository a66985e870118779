"""The one owner of the database engine and of transactions, for the API and the worker."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, create_engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.core.config import get_settings

# PostgreSQL text cannot hold NUL: an input stored or compared as text must not carry one
# (else the driver fails and the request would end in a 500).
NO_NUL_PATTERN = r"^[^\x00]*$"

# durable_jobs checks each pooled connection before use (it installs the check on the
# SQLAlchemy engine it is given), so no pre-ping here.
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
