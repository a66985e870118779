"""`DurableTask`: the Celery task class that keeps the job ledger in step.

Before running, a worker claims the job in the ledger; a job that is finished,
cancelled or running elsewhere is acknowledged and skipped. The outcome (success,
scheduled retry, failure) is written back under the same claim.

An attempt cut short because the database or the broker went away is not the task's
failure: it goes back to the outbox, due after a backoff, on a budget of its own. The
ledger writes themselves try again while the database is away, and a write that
cannot be made leaves the job to the lease takeover: never recorded wrong.
"""

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, TypeVar

from celery import Task
from celery.exceptions import Ignore, Reject, Retry
from opentelemetry.trace import SpanKind

from durable_jobs import _ledger as ledger
from durable_jobs import _metrics as metrics
from durable_jobs._context import job_id_var, request_id_var
from durable_jobs._declare import limits_of
from durable_jobs._infrastructure import is_infrastructure_error
from durable_jobs._limits import any_held_for_a_slot, claim_within_limits, wake_held_jobs
from durable_jobs._models import JobState
from durable_jobs._progress import JobCancelled, running
from durable_jobs._runtime import autocommit, current, settings, transaction
from durable_jobs._tracing import job_step_span

logger = logging.getLogger(__name__)

T = TypeVar("T")

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
            try:
                claim = _ledger_write(lambda: _claim_within_limits(job_id, holder, self.name))
            except Exception as exc:
                if not is_infrastructure_error(exc):
                    raise
                # The broker delivers the message again; the ledger is not touched.
                logger.warning("Job %s: the ledger is unreachable (%s)", job_id, _describe(exc))
                raise Reject(exc, requeue=True) from exc
            if claim.refusal is ledger.ClaimRefusal.UNTRACKED:
                return super().__call__(*args, **kwargs)
            if claim.attempt is None:
                logger.info("Skipping job %s (%s): %s", job_id, self.name, claim.refusal)
                if claim.refusal is ledger.ClaimRefusal.TOO_MANY_WORKER_LOSSES:
                    metrics.job_finished(self.name, JobState.FAILED)
                return None
            metrics.attempt_started(self.name, claim.attempt, claim.waited_seconds)
            request_token = request_id_var.set(claim.request_id)
            stopped = False
            try:
                if claim.traceparent is None or (tracer := current().tracer) is None:
                    return self._run_attempt(job_id, claim.attempt, args, kwargs)
                # A child of the job's enqueue, whoever published it and however often.
                with job_step_span(
                    tracer,
                    f"run {self.name}",
                    SpanKind.CONSUMER,
                    claim.traceparent,
                    {"job.id": str(job_id), "job.attempt": claim.attempt},
                ):
                    return self._run_attempt(job_id, claim.attempt, args, kwargs)
            except (SystemExit, KeyboardInterrupt):
                # The pool process is being stopped: the job keeps its slot until its
                # lease runs out.
                stopped = True
                raise
            finally:
                request_id_var.reset(request_token)
                if not stopped:
                    # The outcome is written: the slot is free for a job waiting for it.
                    _wake_held_jobs(self.name)
        finally:
            job_id_var.reset(job_token)

    def _run_attempt(
        self, job_id: uuid.UUID, attempt: int, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        logger.info("Job %s (%s) attempt %d started", job_id, self.name, attempt)
        token = _current_attempt.set((job_id, attempt))
        started = time.monotonic()
        try:
            with running(job_id, attempt):
                result = super().__call__(*args, **kwargs)
        except JobCancelled as cancelled:
            metrics.attempt_ended(self.name, time.monotonic() - started)
            _ledger_write(lambda: _finish(ledger.record_cancelled, job_id, attempt))
            logger.info("Job %s (%s) cancelled during attempt %d", job_id, self.name, attempt)
            # Acknowledged and done: the ledger says cancelled, nothing runs it again.
            raise Ignore() from cancelled
        except (SystemExit, KeyboardInterrupt):
            # SystemExit is the pool process being stopped (cold shutdown, hard time
            # limit), not the task failing: the attempt stays started, and the lease
            # takeover runs it again, counting a worker loss.
            raise
        except (Retry, Reject, Ignore):
            metrics.attempt_ended(self.name, time.monotonic() - started)
            raise
        except BaseException as exc:
            metrics.attempt_ended(self.name, time.monotonic() - started)
            if is_infrastructure_error(exc):
                self._retry_after_infrastructure_error(job_id, attempt, exc)
            error = _describe(exc)
            if _ledger_write(lambda: _finish(ledger.mark_failed, job_id, attempt, error)):
                metrics.job_finished(self.name, JobState.FAILED)
            logger.error("Job %s (%s) failed on attempt %d: %s", job_id, self.name, attempt, error)
            raise
        finally:
            _current_attempt.reset(token)
        metrics.attempt_ended(self.name, time.monotonic() - started)
        kept, refusal = _result_to_keep(result)
        if refusal is not None:
            # Not retried: the same value would be refused again.
            error = _describe(ResultNotKept(refusal))
            if _ledger_write(lambda: _finish(ledger.mark_failed, job_id, attempt, error)):
                metrics.job_finished(self.name, JobState.FAILED)
            logger.error("Job %s (%s) failed on attempt %d: %s", job_id, self.name, attempt, error)
            raise ResultNotKept(refusal)
        try:
            recorded = _ledger_write(lambda: _finish(ledger.record_success, job_id, attempt, kept))
        except Exception as exc:
            if not is_infrastructure_error(exc):
                raise
            # Never recorded wrong: the job stays started, and the lease takeover runs it
            # again, which finds its effect done.
            logger.error(
                "Job %s attempt %d succeeded but the ledger is unreachable (%s); "
                "the lease takeover will finish it",
                job_id,
                attempt,
                _describe(exc),
            )
            return result
        if recorded is JobState.CANCELLED:
            logger.warning(
                "Job %s (%s) finished attempt %d after a cancel request: recorded as cancelled",
                job_id,
                self.name,
                attempt,
            )
        elif recorded is not None:
            metrics.job_finished(self.name, JobState.SUCCEEDED)
            logger.info("Job %s (%s) succeeded on attempt %d", job_id, self.name, attempt)
        else:
            logger.warning("Job %s attempt %d finished after another took it over", job_id, attempt)
        return result

    def _retry_after_infrastructure_error(
        self, job_id: uuid.UUID, attempt: int, error: BaseException
    ) -> NoReturn:
        """Send the job back through the outbox (raising Ignore), or fail it once its
        budget is spent (raising the error)."""
        try:
            state = _ledger_write(
                lambda: _finish(
                    ledger.schedule_infrastructure_retry, job_id, attempt, _describe(error)
                )
            )
        except Exception as exc:
            if not is_infrastructure_error(exc):
                raise
            logger.error(
                "Job %s attempt %d was cut short (%s) and the ledger is unreachable; "
                "the lease takeover will run it again",
                job_id,
                attempt,
                _describe(error),
            )
            raise Ignore() from error
        if state is JobState.FAILED:
            metrics.job_finished(self.name, state)
            logger.error(
                "Job %s (%s) failed: infrastructure errors on %d attempts in a row: %s",
                job_id,
                self.name,
                settings().job_infrastructure_retries + 1,
                _describe(error),
            )
            raise error
        if state is JobState.RETRYING:
            metrics.retry_scheduled(self.name, "infrastructure")
        logger.warning(
            "Job %s (%s) attempt %d was cut short by its infrastructure (%s); "
            "it runs again from the outbox after a backoff",
            job_id,
            self.name,
            attempt,
            _describe(error),
        )
        raise Ignore() from error

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
        """Record the retry in the ledger as due later, back in the outbox: the relay
        publishes it when it is due. No countdown message waits meanwhile in a worker's
        memory, Redis's unacknowledged set or a broker delay queue, so a retry an hour out
        is as safe as one a second out. The attempt's message is acknowledged."""
        limit = self.max_retries if max_retries is None else max_retries
        current = _current_attempt.get()
        retries_left = limit is None or self.request.retries < limit
        if current is None or not retries_left or self.request.called_directly:
            # Not a ledger job (or out of retries): Celery's own retry, or its error.
            # Celery 5.7's native delayed delivery (RabbitMQ quorum queues) counts whole
            # seconds and refuses a countdown that truncates to 0 (ValueError).
            if countdown is not None and 0 < countdown < 1:
                countdown = 1
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
        job_id, attempt = current
        delay = _retry_delay(eta, countdown, self.default_retry_delay)
        if _ledger_write(lambda: _mark_retrying(job_id, attempt, _describe(exc), delay)):
            metrics.retry_scheduled(self.name, "error")
        logger.warning(
            "Job %s (%s) attempt %d failed (%s); retry %d of %s in %.1fs",
            job_id,
            self.name,
            attempt,
            _describe(exc),
            self.request.retries + 1,
            limit,
            delay,
        )
        retry = Retry(exc=exc, when=datetime.now(UTC) + timedelta(seconds=delay))
        if throw:
            raise retry
        return retry


def _retry_delay(eta: Any, countdown: float | None, default: float | None) -> float:
    if countdown is None and isinstance(eta, datetime):
        moment = eta if eta.tzinfo is not None else eta.replace(tzinfo=UTC)
        return max(0.0, (moment - datetime.now(UTC)).total_seconds())
    seconds = countdown if countdown is not None else default
    return max(0.0, float(seconds or 0))


class ResultNotKept(Exception):
    """A task's return value the ledger cannot keep: not JSON, or over JOB_RESULT_MAX_BYTES."""


def _result_to_keep(result: Any) -> tuple[Any, str | None]:
    """The value to store, or why it cannot be stored."""
    if result is None:
        return None, None
    try:
        encoded = json.dumps(result, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        return None, f"the return value is not JSON ({exc})"
    limit = settings().job_result_max_bytes
    if len(encoded) > limit:
        return None, (
            f"the return value is {len(encoded)} bytes of JSON, over JOB_RESULT_MAX_BYTES ({limit})"
        )
    if b"\\u0000" in encoded:
        return None, "the return value holds a NUL character (\\u0000)"
    return result, None


def _ledger_write(write: Callable[[], T]) -> T:
    """Run one ledger write, trying again while the database is away, for up to
    JOB_LEDGER_RETRY_SECONDS; each try takes a fresh pooled connection."""
    deadline = time.monotonic() + settings().job_ledger_retry_seconds
    delay = 0.05
    while True:
        try:
            return write()
        except Exception as exc:
            if not is_infrastructure_error(exc) or time.monotonic() + delay > deadline:
                raise
            logger.warning("Ledger write failed (%s); trying again", _describe(exc))
            time.sleep(delay)
            delay = min(2 * delay, 1.0)


def _finish(write: Callable[..., T], job_id: uuid.UUID, attempt: int, *args: Any) -> T:
    with autocommit() as connection:
        return write(connection, job_id, attempt, *args)


def _mark_retrying(job_id: uuid.UUID, attempt: int, error: str, countdown: float) -> bool:
    with transaction() as session:
        return ledger.mark_retrying(session, job_id, attempt, error, countdown)


def _claim_within_limits(job_id: uuid.UUID, holder: ledger.Holder, task_name: str) -> ledger.Claim:
    limits = limits_of(task_name)
    if limits is None:
        return _claim(job_id, holder)
    with transaction() as session:
        claim = claim_within_limits(session, job_id, task_name, limits, holder, process_is_gone)
    if claim.refusal is ledger.ClaimRefusal.OVER_LIMIT:
        # A slot freed while the hold was being written finds no held job to wake.
        _wake_held_jobs(task_name)
    return claim


def _wake_held_jobs(task_name: str) -> None:
    """An attempt of a concurrency-limited task ended and its outcome is written: publish
    the oldest jobs waiting for a slot, one per free slot. Best effort: held jobs are
    re-checked after a lease anyway."""
    limits = limits_of(task_name)
    if limits is None or limits.concurrency is None:
        return
    try:
        with autocommit() as connection:
            if not any_held_for_a_slot(connection, task_name):
                return
        with transaction() as session:
            messages = wake_held_jobs(session, task_name, limits.concurrency)
    except Exception as exc:
        logger.warning("Could not wake jobs held by %s's limit: %s", task_name, _describe(exc))
        return
    if messages:
        current().publisher.submit(messages)


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
