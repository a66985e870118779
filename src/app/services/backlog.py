"""The job backlog (jobs waiting for a worker), read cheaply enough to check on every request."""

import threading
import time
from collections.abc import Callable

from sqlalchemy import text

from app.core.db import transaction
from durable_jobs import JobState

# Each count from an index: (state, created_at), and the partial index of unpublished
# rows for the outbox rows not already counted as queued.
_BACKLOG = text(
    f"""
    SELECT
      (SELECT count(*) FROM jobs WHERE state = '{JobState.QUEUED}')
      + (SELECT count(*) FROM jobs
           WHERE published_at IS NULL
             AND state IN ('{JobState.RETRYING}', '{JobState.STARTED}')) AS backlog
    """
)


def read_backlog() -> int:
    """Jobs queued, plus jobs still in the outbox (committed, not yet handed to the broker)."""
    with transaction() as session:
        return int(session.execute(_BACKLOG).scalar_one())


class BacklogGauge:
    """The backlog as last read from the ledger, at most `max_age_seconds` old, plus the
    jobs this process let in since: one query per second per process, whatever the load.

    Between reads, other processes' jobs are not seen, and jobs let in just before a read
    but not yet committed drop out of the estimate: the backlog can pass a threshold by
    the requests in flight, not more.
    """

    def __init__(
        self, max_age_seconds: float = 1.0, read: Callable[[], int] = read_backlog
    ) -> None:
        self._max_age = max_age_seconds
        self._read = read
        self._lock = threading.Lock()
        self._read_at = -float("inf")
        self._last_read = 0
        self._admitted_since_read = 0

    def current(self) -> int:
        if time.monotonic() - self._read_at >= self._max_age:
            self._refresh()
        return self._last_read + self._admitted_since_read

    def count_admitted(self) -> None:
        with self._lock:
            self._admitted_since_read += 1

    def _refresh(self) -> None:
        # One thread reads; the others go on with the estimate they have.
        if not self._lock.acquire(blocking=False):
            return
        try:
            if time.monotonic() - self._read_at < self._max_age:
                return
            self._last_read = self._read()
            self._read_at = time.monotonic()
            self._admitted_since_read = 0
        finally:
            self._lock.release()
