"""`DurableTask`: the Celery task class that keeps the job ledger in step.

Before running, a worker claims the job in the ledger; a job that is finished,
cancelled or running elsewhere is acknowledged and skipped. The outcome (success,
scheduled retry, failure) is written back under the same claim.
"""

import logging
import os
import socket
import uuid
from contextvars import ContextVar
from typing import Any

from celery import Task
from celery.exceptions import Retry

from durable_jobs import _ledger as ledger
from durable_jobs._context import job_id_var, request_id_var
from durable_jobs._runtime import autocommit, transaction

logger = logging.getLogger(__name__)

_current_attempt: ContextVar[tuple[uuid.UUID, int] | None] = ContextVar(
    "current_attempt", default=None
)


class DurableTask(Task):  # type: ignore[type-arg]
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        job_id = as_job_id(self.request.id)
        if job_id is None or self.request.called_directly:
            return super().__call__(*args, **kwargs)
        job_token = job_id_var.set(str(job_id))
        try:
            holder = ledger.Holder(self.request.hostname or socket.gethostname(), os.getpid())
            claim = _claim(job_id, holder)
            if claim.refusal is ledger.ClaimRefusal.UNTRACKED:
                return super().__call__(*args, **kwargs)
            if claim.attempt is None:
                logger.info("Skipping job %s (%s): %s", job_id, self.name, claim.refusal)
                return None
            request_token = request_id_var.set(claim.request_id)
            try:
                return self._run_attempt(job_id, claim.attempt, args, kwargs)
            finally:
                request_id_var.reset(request_token)
        finally:
            job_id_var.reset(job_token)

    def _run_attempt(
        self, job_id: uuid.UUID, attempt: int, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        logger.info("Job %s (%s) attempt %d started", job_id, self.name, attempt)
        token = _current_attempt.set((job_id, attempt))
        try:
            result = super().__call__(*args, **kwargs)
        except (Retry, SystemExit, KeyboardInterrupt):
            # SystemExit is the pool process being stopped (cold shutdown, hard time
            # limit), not the task failing: the attempt stays started, and the lease
            # takeover runs it again, counting a worker loss.
            raise
        except BaseException as exc:
            with autocommit() as connection:
                ledger.mark_failed(connection, job_id, attempt, _describe(exc))
            logger.error(
                "Job %s (%s) failed on attempt %d: %s", job_id, self.name, attempt, _describe(exc)
            )
            raise
        finally:
            _current_attempt.reset(token)
        with autocommit() as connection:
            recorded = ledger.mark_succeeded(connection, job_id, attempt)
        if recorded:
            logger.info("Job %s (%s) succeeded on attempt %d", job_id, self.name, attempt)
        else:
            logger.warning("Job %s attempt %d finished after another took it over", job_id, attempt)
        return result

    def retry(
        self,
        args: Any = None,
        kwargs: Any = None,
        exc: Exception | None = None,
        throw: bool = True,
        eta: Any = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Any:
        """Record the scheduled retry in the ledger before Celery publishes it, so the
        new message can never be claimed ahead of that record."""
        # Celery 5.7's native delayed delivery (RabbitMQ quorum queues) counts whole
        # seconds and refuses a countdown that truncates to 0 (ValueError).
        if countdown is not None and 0 < countdown < 1:
            countdown = 1
        limit = self.max_retries if max_retries is None else max_retries
        current = _current_attempt.get()
        retries_left = limit is None or self.request.retries < limit
        if current is not None and retries_left:
            job_id, attempt = current
            delay = self.default_retry_delay if countdown is None else countdown
            with transaction() as session:
                ledger.mark_retrying(session, job_id, attempt, _describe(exc), float(delay))
            logger.warning(
                "Job %s (%s) attempt %d failed (%s); retry %d of %s in %.1fs",
                job_id,
                self.name,
                attempt,
                _describe(exc),
                self.request.retries + 1,
                limit,
                float(delay),
            )
        return super().retry(
            args=args,
            kwargs=kwargs,
            exc=exc,
            throw=throw,
            eta=eta,
            countdown=countdown,
            max_retries=max_retries,
            **options,
        )


def _claim(job_id: uuid.UUID, holder: ledger.Holder) -> ledger.Claim:
    with autocommit() as connection:
        claim = ledger.claim_runnable(connection, job_id, holder)
    if claim is not None:
        return claim
    with transaction() as session:
        return ledger.claim(session, job_id, holder, process_is_gone)


def process_is_gone(pid: int) -> bool:
    """True when no live process of this host has the pid (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def as_job_id(task_id: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(task_id) if task_id else None
    except ValueError:
        return None


def _describe(exc: BaseException | None) -> str:
    return "unknown error" if exc is None else f"{type(exc).__name__}: {exc}"
