"""Periodic schedules: each tick enqueued exactly once, however many relays run; missed
ticks run once or are skipped; schedules refused when they cannot work."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from app.core.db import transaction
from app.tasks.example_tasks import send_welcome_email
from durable_jobs import (
    CatchUp,
    InvalidSchedule,
    Job,
    JobState,
    Schedule,
    ScheduleTick,
    define_schedule,
    get_schedule,
    list_schedules,
    pause_schedule,
    resume_schedule,
    tick_schedules,
)
from durable_jobs._schedules import _tick
from tests.support.launchers import start_relay
from tests.support.runner import Process, child_env, wait_until

WELCOME = send_welcome_email.name


def jobs_of(task_name: str) -> list[Job]:
    with transaction() as session:
        return list(session.scalars(select(Job).where(Job.task_name == task_name)))


def ticks_of(name: str) -> list[datetime]:
    with transaction() as session:
        return list(
            session.scalars(
                select(ScheduleTick.tick_at)
                .where(ScheduleTick.schedule_name == name)
                .order_by(ScheduleTick.tick_at)
            )
        )


def fall_due(name: str, ago: timedelta = timedelta(0)) -> None:
    """Move the schedule's next tick to `ago` before now (an outage, when long)."""
    with transaction() as session:
        session.execute(
            update(Schedule).where(Schedule.name == name).values(next_tick_at=func.now() - ago)
        )


@pytest.mark.parametrize(
    ("timing", "reason"),
    [
        ({"every": 0}, "positive number of seconds"),
        ({"every": -5}, "positive number of seconds"),
        ({"cron": "0 0 31 2 *"}, "never fires"),
        ({"cron": "61 * * * *"}, "not valid"),
        ({"cron": "*/5 * * * * *"}, "must have 5 fields"),
        ({}, "one of them"),
        ({"cron": "* * * * *", "every": 60}, "one of them"),
    ],
)
def test_a_schedule_that_cannot_work_is_refused_with_the_reason(
    timing: dict[str, object], reason: str
) -> None:
    with pytest.raises(InvalidSchedule, match=reason), transaction() as session:
        define_schedule(session, "welcome", WELCOME, kwargs={"user_id": 1}, **timing)  # type: ignore[arg-type]

    with transaction() as session:
        assert list_schedules(session) == []


def test_an_unknown_task_or_wrong_arguments_are_refused() -> None:
    with pytest.raises(InvalidSchedule, match="no task is declared"), transaction() as session:
        define_schedule(session, "x", "nobody.knows", every=60)
    with pytest.raises(InvalidSchedule, match="user_id"), transaction() as session:
        define_schedule(session, "x", send_welcome_email, every=60)


def test_a_cron_schedule_ticks_on_its_line() -> None:
    with transaction() as session:
        schedule = define_schedule(
            session, "digest", send_welcome_email, cron="*/5 * * * *", kwargs={"user_id": 1}
        )
        next_tick = schedule.next_tick_at.astimezone(UTC)

    assert next_tick.minute % 5 == 0 and next_tick.second == 0
    assert timedelta(0) < next_tick - datetime.now(UTC) <= timedelta(minutes=5)


def test_each_tick_is_enqueued_once() -> None:
    with transaction() as session:
        define_schedule(session, "welcome", send_welcome_email, every=3600, kwargs={"user_id": 7})
    assert tick_schedules() == 0

    fall_due("welcome")
    assert tick_schedules() == 1
    assert tick_schedules() == 0

    (job,) = jobs_of(WELCOME)
    assert job.kwargs == {"user_id": 7} and job.state == JobState.QUEUED
    with transaction() as session:
        schedule = get_schedule(session, "welcome")
        assert schedule.last_job_id == job.id
        assert schedule.next_tick_at > datetime.now(UTC) + timedelta(minutes=59)


def test_the_tick_constraint_holds_when_two_schedulers_read_the_same_tick() -> None:
    """Two schedulers that both saw the schedule due (no row lock between them): the
    primary key on (schedule, tick) lets only the first enqueue."""
    with transaction() as session:
        define_schedule(session, "welcome", send_welcome_email, every=60, kwargs={"user_id": 1})
    fall_due("welcome")
    grace = timedelta(seconds=60)

    with transaction() as first, transaction() as second:
        now = first.scalar(select(func.now()))
        assert now is not None
        mine = first.get(Schedule, "welcome")
        theirs = second.get(Schedule, "welcome")
        assert mine is not None and theirs is not None
        assert _tick(first, mine, now, grace)
        first.commit()
        assert not _tick(second, theirs, now, grace)

    assert len(jobs_of(WELCOME)) == 1


@pytest.mark.parametrize(("catch_up", "jobs"), [(CatchUp.RUN_ONCE, 1), (CatchUp.SKIP, 0)])
def test_ticks_missed_during_an_outage_run_once_or_are_skipped(
    catch_up: CatchUp, jobs: int
) -> None:
    with transaction() as session:
        define_schedule(
            session, "welcome", WELCOME, every=300, kwargs={"user_id": 1}, catch_up=catch_up
        )
    # Relays down for 13 minutes: the ticks 13, 8 and 3 minutes ago were missed.
    fall_due("welcome", ago=timedelta(minutes=13))

    tick_schedules()
    tick_schedules()

    assert len(jobs_of(WELCOME)) == jobs
    assert len(ticks_of("welcome")) == jobs
    with transaction() as session:
        next_tick = get_schedule(session, "welcome").next_tick_at
    assert timedelta(minutes=1) < next_tick - datetime.now(UTC) < timedelta(minutes=3)


def test_a_schedule_is_paused_resumed_and_changed_at_run_time() -> None:
    with transaction() as session:
        define_schedule(session, "welcome", WELCOME, every=60, kwargs={"user_id": 1})
        pause_schedule(session, "welcome")
    fall_due("welcome", ago=timedelta(minutes=5))
    assert tick_schedules() == 0

    with transaction() as session:
        resumed = resume_schedule(session, "welcome")
        assert not resumed.paused
        # Ticks that fell while paused do not run: the next is one interval on.
        assert resumed.next_tick_at > datetime.now(UTC) + timedelta(seconds=50)
        changed = define_schedule(session, "welcome", WELCOME, every=3600, kwargs={"user_id": 2})
        assert changed.interval_seconds == 3600 and changed.kwargs == {"user_id": 2}
        assert changed.next_tick_at > datetime.now(UTC) + timedelta(minutes=59)
        assert [s.name for s in list_schedules(session)] == ["welcome"]
    assert tick_schedules() == 0


def test_two_relays_enqueue_each_tick_of_the_maintenance_schedules_once(
    worker: Process,
) -> None:
    """The reaper as a periodic schedule, ticked by two relays side by side, run by a
    worker: one job per tick, every one of them succeeded."""
    env = child_env({"REAPER_INTERVAL_SECONDS": "0.5"})
    relays = [start_relay(env), start_relay(env)]
    try:
        time.sleep(5)
    finally:
        for relay in relays:
            relay.stop()

    ticks = ticks_of("jobs.reap_abandoned")
    jobs = jobs_of("jobs.reap_abandoned")
    assert len(ticks) >= 5
    assert len(jobs) == len(ticks) == len(set(ticks))
    assert all(b - a >= timedelta(seconds=0.5) for a, b in zip(ticks, ticks[1:], strict=False))
    wait_until(
        lambda: all(job.state == JobState.SUCCEEDED for job in jobs_of("jobs.reap_abandoned")),
        15,
        what="the reaper's jobs to succeed",
    )
    with transaction() as session:
        names = [schedule.name for schedule in list_schedules(session)]
    assert names == ["jobs.prune_finished", "jobs.reap_abandoned"]
