"""Exactly one Celery beat: a second one would send every scheduled task twice.

Beat takes a PostgreSQL advisory lock when it starts and holds it on a connection of
its own for as long as it runs; a second beat finds the lock taken and exits. If the
database restarts, the lock goes with the connection: keep one beat service anyway.
"""

import logging

import psycopg

logger = logging.getLogger(__name__)

# Any constant shared by every beat of this database; these are the bytes of "jobsbeat".
BEAT_LOCK_KEY = 0x6A6F627362656174
CONNECT_TIMEOUT_SECONDS = 5

_held: list[psycopg.Connection] = []


class BeatAlreadyRunning(RuntimeError):
    pass


def hold_beat_lock(dsn: str) -> None:
    """Take the beat lock for the life of this process, or raise BeatAlreadyRunning."""
    connection = psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    row = connection.execute("SELECT pg_try_advisory_lock(%s)", (BEAT_LOCK_KEY,)).fetchone()
    if not (row and row[0]):
        connection.close()
        raise BeatAlreadyRunning(
            "another Celery beat holds the schedule lock; run exactly one beat"
        )
    _held.append(connection)
    logger.info("Beat holds the schedule lock: it is the only beat")
