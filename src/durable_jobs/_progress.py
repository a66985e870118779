"""`report_progress` from inside a task, and the cooperative stop of a cancelled job.

Progress is written to the ledger at most every JOB_PROGRESS_INTERVAL_SECONDS per job
(and always for the last step), in one statement that also reads whether a cancel was
asked for: a task that reports progress stops at its next write after a cancel.
"""

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from durable_jobs import _ledger as ledger
from durable_jobs._infrastructure import is_infrastructure_error
from durable_jobs._models import PROGRESS_NOTE_MAX_LENGTH
from durable_jobs._runtime import autocommit, settings

logger = logging.getLogger(__name__)

PROGRESS_MAX = 2**31 - 1


class JobCancelled(BaseException):
    """Raised by `report_progress` once the running job is asked to cancel.

    A BaseException, like asyncio's CancelledError, so that `except Exception` in a task
    and a task's `retry_for=(Exception,)` do not swallow it; the engine records the job
    as cancelled.
    """

    def __init__(self, job_id: uuid.UUID) -> None:
        super().__init__(f"Job {job_id} was cancelled")
        self.job_id = job_id


@dataclass
class _Attempt:
    job_id: uuid.UUID
    attempt: int
    last_write: float | None = None


_running: ContextVar[_Attempt | None] = ContextVar("running_attempt", default=None)


@contextmanager
def running(job_id: uuid.UUID, attempt: int) -> Iterator[None]:
    """Mark the attempt the task runs in, for `report_progress`."""
    token = _running.set(_Attempt(job_id, attempt))
    try:
        yield
    finally:
        _running.reset(token)


def report_progress(done: int, total: int | None = None, note: str | None = None) -> None:
    """Record how far the running job is: `done` of `total` steps (total may be unknown),
    with an optional short note; shown by the jobs API, the ledger page and the caller's
    status URL.

    Raises `JobCancelled` once the job is asked to cancel: let it propagate (clean up in
    `finally`). Outside a durable job (a test calling the task's function) it only
    checks its arguments. Raises ValueError for a negative `done`, `done` above
    `total`, or a note longer than 200 characters.
    """
    _check(done, total, note)
    current = _running.get()
    if current is None:
        return
    now = time.monotonic()
    interval = settings().job_progress_interval_seconds
    last_step = total is not None and done == total
    if current.last_write is not None and now - current.last_write < interval and not last_step:
        return
    current.last_write = now
    try:
        with autocommit() as connection:
            outcome = ledger.record_progress(
                connection, current.job_id, current.attempt, done, total, note
            )
    except Exception as exc:
        if not is_infrastructure_error(exc):
            raise
        # Progress is advisory: the task goes on, and the next report tries again.
        logger.warning("Job %s: progress not recorded (%s)", current.job_id, exc)
        return
    if outcome is ledger.ProgressOutcome.CANCEL_REQUESTED:
        logger.info("Job %s: cancel requested; stopping at report_progress", current.job_id)
        raise JobCancelled(current.job_id)


def _check(done: int, total: int | None, note: str | None) -> None:
    if isinstance(done, bool) or not isinstance(done, int) or not 0 <= done <= PROGRESS_MAX:
        raise ValueError(f"report_progress: done must be an integer from 0 to {PROGRESS_MAX}")
    if total is not None:
        if isinstance(total, bool) or not isinstance(total, int) or total > PROGRESS_MAX:
            raise ValueError(f"report_progress: total must be an integer up to {PROGRESS_MAX}")
        if done > total:
            raise ValueError(f"report_progress: done ({done}) is above total ({total})")
    if note is not None and (not isinstance(note, str) or len(note) > PROGRESS_NOTE_MAX_LENGTH):
        raise ValueError(
            f"report_progress: note must be a string of at most {PROGRESS_NOTE_MAX_LENGTH} "
            "characters"
        )
    if note is not None and "\x00" in note:
        raise ValueError("report_progress: note must not contain NUL characters")
