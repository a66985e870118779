"""Which errors mean the engine's own infrastructure went away, not that a task failed.

A task whose database connection dropped, or whose broker connection failed, did
not fail: the attempt is retried on the ledger's road, with a budget of its own,
whatever the task's own `autoretry_for`. Everything else (a constraint violation, a
statement cancelled by a timeout, a bug) stays the task's own failure.
"""

import amqp.exceptions
import kombu.exceptions
import psycopg
import redis.exceptions
from sqlalchemy import exc as sa_exc

# SQLSTATEs of a server that is going or gone: connection exceptions (class 08), a
# shutdown or crash (57P01, 57P02), a server still starting (57P03), no free slot (53300).
_GONE_SQLSTATE_CLASSES = ("08",)
_GONE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})

_BROKER_CONNECTION_ERRORS = (
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    amqp.exceptions.RecoverableConnectionError,
)


def is_infrastructure_error(error: BaseException) -> bool:
    """True when `error` says the database or the broker went away."""
    if isinstance(error, sa_exc.DisconnectionError):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        return error.connection_invalidated or _database_went_away(error.orig)
    return _database_went_away(error) or isinstance(error, _BROKER_CONNECTION_ERRORS)


def _database_went_away(error: BaseException | None) -> bool:
    if not isinstance(error, psycopg.OperationalError):
        return False
    sqlstate = error.sqlstate
    if sqlstate is None:  # raised by the client itself: the connection failed or was lost
        return True
    return sqlstate.startswith(_GONE_SQLSTATE_CLASSES) or sqlstate in _GONE_SQLSTATES
