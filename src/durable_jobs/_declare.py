"""One declaration per task: `@task(...)` takes the whole policy, registers the Celery
task on every engine built in this process, and returns a typed handle whose `enqueue`
is checked against the function's signature."""

import dataclasses
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from durable_jobs import _runtime
from durable_jobs._enqueue import JobOptions, add_and_publish_after_commit
from durable_jobs._limits import TaskLimits, task_limits
from durable_jobs._models import Job
from durable_jobs._settings import JobsSettings

if TYPE_CHECKING:
    from celery import Celery, Task

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class FromSettings:
    """A policy value read from the settings the engine is built with, not at import:
    `retries=FromSettings("email_max_retries")`."""

    name: str

    def resolve(self, settings: JobsSettings) -> Any:
        return getattr(settings, self.name)


IntPolicy = int | FromSettings | None
BoolPolicy = bool | FromSettings


def _resolve(value: Any, settings: JobsSettings) -> Any:
    return value.resolve(settings) if isinstance(value, FromSettings) else value


@dataclass(frozen=True)
class TaskPolicy:
    """How a task is delivered and retried; None takes the engine's default."""

    name: str
    # None: the settings' TASK_DEFAULT_QUEUE.
    queue: str | None = None
    retry_for: tuple[type[BaseException], ...] = ()
    retries: int | FromSettings = 0
    # Exponential backoff: a factor in seconds (True is 1), capped at backoff_max.
    backoff: IntPolicy | bool = None
    backoff_max: IntPolicy = None
    jitter: BoolPolicy = True
    time_limit: IntPolicy = None
    soft_time_limit: IntPolicy = None
    # Global limits across every worker: jobs at once, and starts per period ("100/m").
    concurrency: int | None = None
    rate: str | None = None
    # 0 (None: the default) runs first; a larger number waits behind smaller ones, where
    # the broker orders messages (Redis; RabbitMQ 4 quorum queues: 0-4 before 5-9).
    priority: int | None = None

    @property
    def limits(self) -> TaskLimits | None:
        return task_limits(self.name, self.concurrency, self.rate)

    def queue_for(self, settings: JobsSettings) -> str:
        return self.queue or settings.task_default_queue

    def max_attempts(self, settings: JobsSettings) -> int:
        return int(_resolve(self.retries, settings)) + 1

    def celery_options(self, settings: JobsSettings) -> dict[str, Any]:
        options: dict[str, Any] = {
            "name": self.name,
            "max_retries": _resolve(self.retries, settings),
        }
        if self.retry_for:
            options["autoretry_for"] = self.retry_for
        optional = {
            "retry_backoff": self.backoff,
            "retry_backoff_max": self.backoff_max,
            "retry_jitter": self.jitter,
            "time_limit": self.time_limit,
            "soft_time_limit": self.soft_time_limit,
        }
        for option, value in optional.items():
            if value is not None:
                options[option] = _resolve(value, settings)
        return options


class DurableTaskHandle(Generic[P, R]):
    """A declared task: call it to run it here, `enqueue` it to run it in a worker."""

    def __init__(self, function: Callable[P, R], policy: TaskPolicy) -> None:
        self._function = function
        self._signature = inspect.signature(function)
        self.policy = policy
        self.__doc__ = function.__doc__
        self.__name__ = function.__name__

    @property
    def name(self) -> str:
        return self.policy.name

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._function(*args, **kwargs)

    def enqueue(self, session: Session, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Record the job in the caller's transaction; it is published once that commits.

        Raises TypeError, before any row is written, for arguments the function does not
        take or values that are not JSON.
        """
        arguments = self.arguments(*args, **kwargs)
        return add_and_publish_after_commit(session, self.policy, arguments)

    def with_priority(self, priority: int) -> "DurableTaskHandle[P, R]":
        """The same task, enqueued at another priority: `task.with_priority(0).enqueue(...)`."""
        check_priority(self.name, priority)
        handle = DurableTaskHandle(
            self._function, dataclasses.replace(self.policy, priority=priority)
        )
        return handle

    def options(
        self,
        *,
        run_at: datetime | None = None,
        countdown: float | None = None,
        unique_key: str | None = None,
        unique_for: float | timedelta | None = None,
    ) -> "EnqueueWith[P, R]":
        """This task with options for its next enqueues:
        `task.options(run_at=...).enqueue(session, user_id=1)`.

        The options live apart from the task's own arguments, so no option name can clash
        with a keyword the task takes, and `enqueue` stays typed by the function.
        `run_at` (timezone-aware) or `countdown` (seconds) schedule the job: it waits in
        the ledger and the relay publishes it when due; a time already past runs it now.
        `unique_key` (at most 200 characters) makes the enqueue return the task's job
        that holds the key, if one does, instead of writing a new one: held while that
        job is unfinished, or for `unique_for` (seconds or a timedelta) from its enqueue.
        """
        period = (
            timedelta(seconds=unique_for) if isinstance(unique_for, int | float) else unique_for
        )
        return EnqueueWith(
            self,
            JobOptions(
                run_at=run_at, countdown=countdown, unique_key=unique_key, unique_for=period
            ),
        )

    def arguments(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The call as the keyword arguments the message carries (JSON values only)."""
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}: {exc}") from None
        arguments = dict(bound.arguments)
        try:
            json.dumps(arguments)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{self.name}: arguments must be JSON values: {exc}") from None
        return arguments

    @property
    def celery_task(self) -> "Task[P, R]":
        """The task as registered on the process's Celery app."""
        task: Task[P, R] = _runtime.current().celery.tasks[self.name]
        return task

    @property
    def request(self) -> Any:
        """Celery's request of the attempt running now (its id, its retries)."""
        return self.celery_task.request


class EnqueueWith(Generic[P, R]):
    """A declared task with options for its enqueues (see `DurableTaskHandle.options`)."""

    def __init__(self, handle: DurableTaskHandle[P, R], options: JobOptions) -> None:
        self.handle = handle
        self.job_options = options

    def enqueue(self, session: Session, *args: P.args, **kwargs: P.kwargs) -> Job:
        """`DurableTaskHandle.enqueue`, with these options."""
        arguments = self.handle.arguments(*args, **kwargs)
        return add_and_publish_after_commit(
            session, self.handle.policy, arguments, self.job_options
        )


_declared: dict[str, DurableTaskHandle[Any, Any]] = {}


def task(
    name: str,
    *,
    queue: str | None = None,
    retry_for: tuple[type[BaseException], ...] = (),
    retries: int | FromSettings = 0,
    backoff: IntPolicy | bool = None,
    backoff_max: IntPolicy = None,
    jitter: BoolPolicy = True,
    time_limit: IntPolicy = None,
    soft_time_limit: IntPolicy = None,
    concurrency: int | None = None,
    rate: str | None = None,
    priority: int | None = None,
) -> Callable[[Callable[P, R]], DurableTaskHandle[P, R]]:
    """Declare a durable task under a `"domain.action"` name, with its whole policy.

    The function takes JSON keyword arguments (ids, not objects) and may run more than
    once: it re-reads its rows and skips work already done.

    `concurrency` (jobs at once) and `rate` ("100/m") are global limits, held across
    every worker; a limit that cannot work raises ValueError here, with the reason.
    """
    task_limits(name, concurrency, rate)
    if priority is not None:
        check_priority(name, priority)
    policy = TaskPolicy(
        name=name,
        queue=queue,
        retry_for=retry_for,
        retries=retries,
        backoff=backoff,
        backoff_max=backoff_max,
        jitter=jitter,
        time_limit=time_limit,
        soft_time_limit=soft_time_limit,
        concurrency=concurrency,
        rate=rate,
        priority=priority,
    )

    def declare(function: Callable[P, R]) -> DurableTaskHandle[P, R]:
        existing = _declared.get(name)
        if existing is not None and _path(existing._function) != _path(function):
            raise ValueError(
                f"Two tasks are declared as {name!r}: "
                f"{_path(existing._function)} and {_path(function)}"
            )
        handle = DurableTaskHandle(function, policy)
        _declared[name] = handle
        for runtime in _runtime.all_runtimes():
            register(runtime.celery, runtime.settings, handle)
        return handle

    return declare


def _path(function: Callable[..., Any]) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def declared_tasks() -> list[DurableTaskHandle[Any, Any]]:
    return list(_declared.values())


def check_priority(name: str, priority: int) -> None:
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
        raise ValueError(f"{name}: priority={priority!r} must be a whole number from 0 to 9")


def limits_of(name: str) -> TaskLimits | None:
    """The global limits of a task declared in this process, if it has any."""
    handle = _declared.get(name)
    return None if handle is None else handle.policy.limits


def declared_task(name: str) -> DurableTaskHandle[Any, Any] | None:
    return _declared.get(name)


def register(celery: "Celery", settings: JobsSettings, handle: DurableTaskHandle[Any, Any]) -> None:
    # Lazy: the task binds to the app (and copies its config) when the app finalizes.
    celery.task(**handle.policy.celery_options(settings))(handle._function)
