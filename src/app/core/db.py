"""The one owner of the database engine and of transactions, for the API and the worker."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.core.config import settings

engine = create_engine(
    settings.database_url,
    pool_pre_ping=True,
    pool_size=10,
    max_overflow=20,
    connect_args={"connect_timeout": 5},
)
SessionFactory = sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


@contextmanager
def transaction() -> Iterator[Session]:
    """A session whose work commits when the block ends, or rolls back if it raises."""
    with SessionFactory() as session, session.begin():
        yield session
