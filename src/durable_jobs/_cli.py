"""`jobs` (or `python -m durable_jobs`): the operator's commands over the jobs service.

Settings come from the environment, as the engine's `JobsSettings` reads them
(DATABASE_URL, BROKER_URL, TASK_DEFAULT_QUEUE, ...). Every command takes `--json`.
Exit codes: 0 done, 1 the database or the settings failed, 2 bad usage (a malformed
id, an unknown state), 3 no such job, 4 the job's state does not allow the action.
"""

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from durable_jobs import _runtime
from durable_jobs._broker import task_queues
from durable_jobs._celery import create_celery
from durable_jobs._enqueue import take_messages_to_publish
from durable_jobs._ledger import mark_published
from durable_jobs._message import JobMessage
from durable_jobs._models import Job, JobState
from durable_jobs._publisher import publish
from durable_jobs._schedules import (
    Schedule,
    ScheduleNotFound,
    list_schedules,
    pause_schedule,
    resume_schedule,
)
from durable_jobs._schemas import JobPage, JobRead
from durable_jobs._service import (
    InvalidCursor,
    JobNotFound,
    JobStateConflict,
    cancel_job,
    get_job,
    list_jobs,
    retry_job,
)
from durable_jobs._settings import JobsSettings
from durable_jobs._stats import job_stats

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4

T = TypeVar("T")

app = typer.Typer(
    name="jobs",
    help="Inspect and operate the durable job ledger (settings from the environment).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
JobIdArgument = Annotated[str, typer.Argument(help="The job's id (a UUID).", show_default=False)]


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def _parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        _fail(f"{value!r} is not a job id (a UUID such as {uuid.UUID(int=0)})", EXIT_USAGE)


@contextmanager
def _transaction() -> Iterator[Session]:
    """The engine built from the environment, and one transaction on its database."""
    try:
        settings = JobsSettings()
    except ValidationError as exc:
        _fail(f"the settings in the environment are invalid: {exc}", EXIT_FAILURE)
    create_celery(settings)
    try:
        with _runtime.transaction() as session:
            yield session
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        _fail(f"the database failed: {reason}", EXIT_FAILURE)


def _run(action: Callable[[Session], T]) -> T:
    try:
        with _transaction() as session:
            return action(session)
    except JobNotFound as exc:
        _fail(str(exc), EXIT_NOT_FOUND)
    except JobStateConflict as exc:
        _fail(str(exc), EXIT_CONFLICT)
    except InvalidCursor as exc:
        _fail(str(exc), EXIT_USAGE)
    except ScheduleNotFound as exc:
        _fail(str(exc), EXIT_NOT_FOUND)


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def _echo_job(job: JobRead) -> None:
    for name, value in job.model_dump(mode="json").items():
        shown = json.dumps(value) if isinstance(value, dict) else value
        typer.echo(f"{name + ':':<17}{'-' if shown is None else shown}")


@app.command("list")
def list_command(
    state: Annotated[
        JobState | None, typer.Option(help="Only jobs in this state.", show_default=False)
    ] = None,
    task: Annotated[
        str | None, typer.Option(help="Only jobs of this task name.", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Jobs per page.")] = 50,
    cursor: Annotated[
        str | None, typer.Option(help="next_cursor of a previous page.", show_default=False)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List jobs, newest first."""

    def read(session: Session) -> JobPage:
        jobs, next_cursor = list_jobs(
            session, state=state, task_name=task, limit=limit, cursor=cursor
        )
        return JobPage(items=[JobRead.model_validate(j) for j in jobs], next_cursor=next_cursor)

    page = _run(read)
    if as_json:
        _echo_json(page.model_dump(mode="json"))
        return
    typer.echo(f"{'ID':<36}  {'STATE':<9}  {'ATTEMPTS':>8}  {'CREATED':<25}  TASK")
    for job in page.items:
        attempts = f"{job.attempts}/{job.max_attempts}"
        created = job.created_at.isoformat(timespec="seconds")
        typer.echo(f"{job.id}  {job.state:<9}  {attempts:>8}  {created:<25}  {job.task_name}")
    if page.next_cursor:
        typer.echo(f"More: --cursor {page.next_cursor}")


@app.command()
def show(job_id: JobIdArgument, as_json: JsonOption = False) -> None:
    """Show one job as its ledger row has it."""
    parsed = _parse_id(job_id)
    job = _run(lambda session: JobRead.model_validate(get_job(session, parsed)))
    if as_json:
        _echo_json(job.model_dump(mode="json"))
    else:
        _echo_job(job)


def _act(action: Callable[[Session, uuid.UUID], Job], job_id: str) -> JobRead:
    parsed = _parse_id(job_id)
    return _run(lambda session: JobRead.model_validate(action(session, parsed)))


@app.command()
def retry(job_id: JobIdArgument, as_json: JsonOption = False) -> None:
    """Run a failed job again (same id, a fresh retry budget)."""
    messages: list[JobMessage] = []

    def retry_and_keep_message(session: Session, parsed: uuid.UUID) -> Job:
        job = retry_job(session, parsed)
        messages.extend(take_messages_to_publish(session))
        return job

    job = _act(retry_and_keep_message, job_id)
    # Published here, after the commit, and recorded as such; with the broker away the
    # job stays in the outbox and the relay publishes it.
    celery = _runtime.current().celery
    # The job's queue may be one only its task names (the CLI imports no task module).
    settings = _runtime.settings()
    for queue in task_queues(settings, {m.queue for m in messages} - set(celery.amqp.queues)):
        celery.amqp.queues.add(queue)
    published = publish(celery, messages)
    if published:
        _run(lambda session: mark_published(session, [job.id]))
    if as_json:
        _echo_json(job.model_dump(mode="json"))
    else:
        typer.echo(f"Job {job.id} is queued again" + ("" if published else " (for the relay)"))


@app.command()
def cancel(job_id: JobIdArgument, as_json: JsonOption = False) -> None:
    """Cancel a job that has not started (queued, or waiting for a retry)."""
    job = _act(cancel_job, job_id)
    if as_json:
        _echo_json(job.model_dump(mode="json"))
    else:
        typer.echo(f"Job {job.id} is cancelled")


@app.command()
def stats(as_json: JsonOption = False) -> None:
    """Jobs per task and state, the outbox, the oldest queued job."""
    numbers = _run(job_stats)
    if as_json:
        _echo_json(
            {
                "by_state": numbers.by_state,
                "by_task": numbers.by_task,
                "outbox": numbers.outbox,
                "oldest_queued_at": numbers.oldest_queued_at,
            }
        )
        return
    typer.echo("  ".join(f"{state}={count}" for state, count in numbers.by_state.items()))
    typer.echo(f"outbox={numbers.outbox}")
    oldest = numbers.oldest_queued_at
    typer.echo(f"oldest queued: {oldest.isoformat(timespec='seconds') if oldest else '-'}")
    for task_name, counts in sorted(numbers.by_task.items()):
        row = "  ".join(f"{state}={count}" for state, count in sorted(counts.items()))
        typer.echo(f"{task_name}: {row}")


schedules_app = typer.Typer(
    help="The periodic schedules the relay ticks: list, pause, resume.", no_args_is_help=True
)
app.add_typer(schedules_app, name="schedules")
ScheduleArgument = Annotated[str, typer.Argument(help="The schedule's name.", show_default=False)]


def _schedule_view(schedule: Schedule) -> dict[str, Any]:
    return {
        "name": schedule.name,
        "task": schedule.task_name,
        "kwargs": schedule.kwargs,
        "cron": schedule.cron,
        "every_seconds": schedule.interval_seconds,
        "catch_up": str(schedule.catch_up),
        "paused": schedule.paused,
        "next_tick_at": schedule.next_tick_at,
        "last_tick_at": schedule.last_tick_at,
        "last_job_id": schedule.last_job_id,
    }


def _echo_schedules(views: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        _echo_json(views)
        return
    for view in views:
        timing = f"cron {view['cron']}" if view["cron"] else f"every {view['every_seconds']:g}s"
        state = "paused" if view["paused"] else f"next {view['next_tick_at']:%Y-%m-%dT%H:%M:%S}"
        typer.echo(f"{view['name']}  {view['task']}  {timing}  {state}")


@schedules_app.command("list")
def schedules_list(as_json: JsonOption = False) -> None:
    """Every schedule, with its timing and next tick."""
    views = _run(lambda session: [_schedule_view(s) for s in list_schedules(session)])
    _echo_schedules(views, as_json)


@schedules_app.command("pause")
def schedules_pause(name: ScheduleArgument, as_json: JsonOption = False) -> None:
    """Stop enqueueing the schedule's ticks (it survives relay restarts)."""
    _echo_schedules([_run(lambda session: _schedule_view(pause_schedule(session, name)))], as_json)


@schedules_app.command("resume")
def schedules_resume(name: ScheduleArgument, as_json: JsonOption = False) -> None:
    """Go on from the next tick after now."""
    _echo_schedules([_run(lambda session: _schedule_view(resume_schedule(session, name)))], as_json)


def main() -> None:
    app()
