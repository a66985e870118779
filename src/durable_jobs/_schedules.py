"""Periodic jobs that never run twice: schedules kept in the ledger's database.

A schedule names a task, its arguments and when: a 5-field cron line (UTC) or an
interval. The relay ticks the schedules that are due: it locks each (FOR UPDATE SKIP
LOCKED, so several relays share them) and records the tick in `job_schedule_ticks`,
whose primary key (schedule, tick time) lets each tick enqueue exactly one job however
many relays run. A tick missed while no relay ran is enqueued once afterwards
(`CatchUp.RUN_ONCE`) or skipped (`CatchUp.SKIP`), as the schedule says.

Schedules are defined, changed, paused and removed at run time with the functions
below; each takes the caller's session and only flushes.
"""

import logging
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from sqlalchemy import Boolean, DateTime, Float, ForeignKey, String, delete, func, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from durable_jobs import _ledger as ledger
from durable_jobs._declare import DurableTaskHandle, declared_task
from durable_jobs._enqueue import publish_after_commit
from durable_jobs._models import LedgerBase
from durable_jobs._runtime import current, transaction

logger = logging.getLogger(__name__)

SCHEDULE_NAME_MAX_LENGTH = 200
# Ticks are kept this long after they ran, for the record; the primary key only needs
# the ticks still to come to be unique.
TICK_RETENTION = timedelta(days=7)


class CatchUp(StrEnum):
    """What a schedule does with ticks missed while no relay ran."""

    # The latest missed tick runs once when a relay is back; earlier ones are dropped.
    RUN_ONCE = "run_once"
    # Missed ticks are skipped; the schedule goes on with its next tick.
    SKIP = "skip"


class Schedule(LedgerBase):
    """A periodic job: `task_name` with `kwargs`, on a cron line or every N seconds."""

    __tablename__ = "job_schedules"

    name: Mapped[str] = mapped_column(String(SCHEDULE_NAME_MAX_LENGTH), primary_key=True)
    task_name: Mapped[str] = mapped_column(String(200))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    cron: Mapped[str | None] = mapped_column(String(200))
    interval_seconds: Mapped[float | None] = mapped_column(Float)
    catch_up: Mapped[CatchUp] = mapped_column(String(20))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    next_tick_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_tick_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_job_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    def next_tick_after(self, moment: datetime) -> datetime:
        return next_tick(self.cron, self.interval_seconds, moment)


class ScheduleTick(LedgerBase):
    """One tick of a schedule and the one job it enqueued."""

    __tablename__ = "job_schedule_ticks"

    schedule_name: Mapped[str] = mapped_column(
        ForeignKey("job_schedules.name", ondelete="CASCADE"), primary_key=True
    )
    tick_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column()
    enqueued_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class InvalidSchedule(ValueError):
    """A schedule that cannot work; the message says why."""


class ScheduleNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"No schedule named {name!r}")
        self.name = name


def next_tick(cron: str | None, interval_seconds: float | None, moment: datetime) -> datetime:
    """The schedule's first tick strictly after `moment`."""
    if cron is not None:
        return croniter(cron, moment).get_next(datetime)
    assert interval_seconds is not None
    return moment + timedelta(seconds=interval_seconds)


def check_timing(cron: str | None, every: float | timedelta | None) -> float | None:
    """Refuse a timing that cannot work; return the interval in seconds, if any."""
    if (cron is None) == (every is None):
        raise InvalidSchedule("give a cron line or an interval (every=), one of them")
    if every is not None:
        seconds = every.total_seconds() if isinstance(every, timedelta) else float(every)
        if not seconds > 0 or seconds == float("inf"):
            raise InvalidSchedule(f"the interval must be a positive number of seconds, not {every}")
        return seconds
    assert cron is not None
    if len(cron.split()) != 5:
        raise InvalidSchedule(
            f"cron line {cron!r} must have 5 fields: minute hour day-of-month month day-of-week"
        )
    try:
        croniter(cron, datetime.now(UTC)).get_next(datetime)
    except CroniterBadCronError as exc:
        raise InvalidSchedule(f"cron line {cron!r} is not valid: {exc}") from None
    except CroniterBadDateError:
        raise InvalidSchedule(f"cron line {cron!r} never fires") from None
    return None


def define_schedule(
    session: Session,
    name: str,
    task: DurableTaskHandle[Any, Any] | str,
    *,
    cron: str | None = None,
    every: float | timedelta | None = None,
    kwargs: dict[str, Any] | None = None,
    catch_up: CatchUp = CatchUp.RUN_ONCE,
) -> Schedule:
    """Create the schedule `name`, or change it: its task, arguments, timing, catch-up.

    `cron` is a 5-field cron line in UTC ("*/15 * * * *"); `every` an interval (seconds
    or a timedelta). A schedule that cannot work (no timing or both, a cron line that
    is not valid or never fires, an interval of 0, an unknown task, arguments the task
    does not take) raises InvalidSchedule, and nothing is written. A change of timing
    takes effect from now; a paused schedule stays paused.
    """
    if not name or len(name) > SCHEDULE_NAME_MAX_LENGTH:
        raise InvalidSchedule(f"a schedule's name takes 1 to {SCHEDULE_NAME_MAX_LENGTH} characters")
    interval = check_timing(cron, every)
    handle = declared_task(task if isinstance(task, str) else task.name)
    if handle is None:
        raise InvalidSchedule(f"no task is declared as {task!r}")
    try:
        arguments = handle.arguments(**(kwargs or {}))
    except TypeError as exc:
        raise InvalidSchedule(str(exc)) from None
    now = session.scalar(select(func.now()))
    assert now is not None
    # Two processes defining one schedule at once: one inserts it, the other changes it.
    session.execute(
        insert(Schedule)
        .values(
            name=name,
            task_name=handle.name,
            kwargs=arguments,
            cron=cron,
            interval_seconds=interval,
            catch_up=CatchUp(catch_up).value,
            paused=False,
            next_tick_at=next_tick(cron, interval, now),
        )
        .on_conflict_do_nothing()
    )
    schedule = session.get(Schedule, name, with_for_update=True, populate_existing=True)
    assert schedule is not None
    timing_changed = (schedule.cron, schedule.interval_seconds) != (cron, interval)
    schedule.task_name = handle.name
    schedule.kwargs = arguments
    schedule.cron = cron
    schedule.interval_seconds = interval
    schedule.catch_up = CatchUp(catch_up)
    if timing_changed:
        schedule.next_tick_at = next_tick(cron, interval, now)
    session.flush()
    return schedule


def list_schedules(session: Session) -> list[Schedule]:
    return list(session.scalars(select(Schedule).order_by(Schedule.name)))


def get_schedule(session: Session, name: str, *, for_update: bool = False) -> Schedule:
    schedule = session.get(Schedule, name, with_for_update=for_update)
    if schedule is None:
        raise ScheduleNotFound(name)
    return schedule


def pause_schedule(session: Session, name: str) -> Schedule:
    """Stop enqueueing the schedule's ticks until it is resumed."""
    schedule = get_schedule(session, name, for_update=True)
    schedule.paused = True
    session.flush()
    return schedule


def resume_schedule(session: Session, name: str) -> Schedule:
    """Go on from the next tick after now: ticks that fell while paused do not run."""
    schedule = get_schedule(session, name, for_update=True)
    if schedule.paused:
        now = session.scalar(select(func.now()))
        assert now is not None
        schedule.paused = False
        schedule.next_tick_at = schedule.next_tick_after(now)
        session.flush()
    return schedule


def delete_schedule(session: Session, name: str) -> None:
    session.delete(get_schedule(session, name, for_update=True))
    session.flush()


def tick_schedules() -> int:
    """Enqueue the job of every schedule whose tick is due; return how many were enqueued.

    Run by the relay; several relays may run it at once and each tick is enqueued once.
    """
    grace = timedelta(seconds=current().settings.schedule_misfire_grace_seconds)
    enqueued = 0
    with transaction() as session:
        now = session.scalar(select(func.now()))
        assert now is not None
        due = session.scalars(
            select(Schedule)
            .where(Schedule.paused.is_(False), Schedule.next_tick_at <= now)
            .order_by(Schedule.next_tick_at)
            .with_for_update(skip_locked=True)
        ).all()
        for schedule in due:
            if _tick(session, schedule, now, grace):
                enqueued += 1
    return enqueued


def _tick(session: Session, schedule: Schedule, now: datetime, grace: timedelta) -> bool:
    # The latest tick due by now: the others before it were missed.
    latest = schedule.next_tick_at
    following = schedule.next_tick_after(latest)
    while following <= now:
        latest, following = following, schedule.next_tick_after(following)
    coalesced = latest != schedule.next_tick_at
    late = now - latest > grace
    schedule.next_tick_at = following
    if late and schedule.catch_up == CatchUp.SKIP:
        logger.warning("Schedule %s: ticks missed up to %s are skipped", schedule.name, latest)
        return False
    handle = declared_task(schedule.task_name)
    if handle is None:
        logger.error("Schedule %s: no task %r is declared here", schedule.name, schedule.task_name)
        return False
    job_id = uuid.uuid4()
    recorded = session.execute(
        insert(ScheduleTick)
        .values(schedule_name=schedule.name, tick_at=latest, job_id=job_id)
        .on_conflict_do_nothing()
        .returning(ScheduleTick.job_id)
    ).scalar()
    if recorded is None:
        return False  # another relay enqueued this tick
    job = ledger.add_job(session, current().settings, handle.policy, schedule.kwargs, job_id=job_id)
    publish_after_commit(session, job)
    schedule.last_tick_at = latest
    schedule.last_job_id = job_id
    session.execute(
        delete(ScheduleTick).where(
            ScheduleTick.schedule_name == schedule.name,
            ScheduleTick.tick_at < latest - TICK_RETENTION,
        )
    )
    if coalesced or late:
        logger.warning("Schedule %s: missed ticks run once, as tick %s", schedule.name, latest)
    return True


def seconds_until_next_tick() -> float | None:
    with transaction() as session:
        seconds = session.scalar(
            select(
                func.extract("epoch", func.min(Schedule.next_tick_at) - func.clock_timestamp())
            ).where(Schedule.paused.is_(False))
        )
    return None if seconds is None else max(0.0, float(seconds))


def define_maintenance_schedules() -> None:
    """The engine's own schedules, at the settings' intervals: each relay defines them
    as it starts (an operator's pause stays)."""
    settings = current().settings
    with transaction() as session:
        define_schedule(
            session,
            "jobs.prune_finished",
            "jobs.prune_finished",
            every=settings.prune_interval_seconds,
        )
        define_schedule(
            session,
            "jobs.reap_abandoned",
            "jobs.reap_abandoned",
            every=settings.reaper_interval_seconds,
        )
