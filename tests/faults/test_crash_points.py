"""Processes killed between two steps that must both happen (T13 in docs/reliability.md):
after the commit and before the publish, after the publish and before the outbox
row is marked. The control shows the same crash losing a job without the outbox."""

import subprocess
import sys

import pytest

from app.core.db import engine
from tests.faults.checker import Outcome, check, drain
from tests.faults.figures import REPEAT, add_row
from tests.faults.programs import CRASHED, crash_after_commit, crash_before_mark, inline_crash
from tests.faults.stack import Stack, add_record_jobs
from tests.support.ledger import new_user_payload
from tests.support.runner import ROOT, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

CRASH_AFTER_COMMIT = crash_after_commit.__name__
INLINE_CRASH = inline_crash.__name__
CRASH_BEFORE_MARK = crash_before_mark.__name__


def crash(stack: Stack, program: str, *args: str, **env: str) -> None:
    """Run the program module until it dies at its crash point."""
    done = subprocess.run(
        [sys.executable, "-m", program, *args],
        cwd=ROOT,
        env={**stack.env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == CRASHED, done.stderr


def test_t13_api_killed_after_commit_before_publish_loses_nothing(stack: Stack) -> None:
    """Each crashed request had committed; its client may well have been told 201."""
    history = stack.history()
    for _ in range(max(3, REPEAT)):
        email = new_user_payload()["email"]
        crash(stack, CRASH_AFTER_COMMIT, email)
        history.add(email, Outcome.OK, 0.0, 0.0)
    stack.start_worker(concurrency=2, email_send_seconds="0.01")
    drained = drain(engine, timeout=60)

    verdict = check(engine, history)
    verdict.assert_safe()
    add_row(
        "T13 API killed between commit and publish",
        verdict,
        drain=drained,
        notes="the relay published every committed job",
    )


def test_t13_control_without_the_outbox_the_same_crash_loses_the_job(stack: Stack) -> None:
    """Inline publishing after the commit (no job row): the crash loses the job, and
    the checker sees it."""
    history = stack.history()
    email = new_user_payload()["email"]
    crash(stack, INLINE_CRASH, email, SEND_WELCOME_EMAIL="false")
    history.add(email, Outcome.OK, 0.0, 0.0)
    stack.start_worker(concurrency=2, email_send_seconds="0.01")
    drain(engine, timeout=60)

    verdict = check(engine, history)
    assert verdict.lost == {email}
    add_row(
        "T13 control: inline publish, no outbox",
        verdict,
        notes="lost as expected: the harness detects loss",
    )


def test_t13_relay_killed_after_publish_before_marking_publishes_twice_runs_once(
    stack: Stack,
) -> None:
    stack.relay.stop()
    history = stack.history()
    add_record_jobs(history, count=20, seconds=0.5)

    crash(stack, CRASH_BEFORE_MARK)
    relay = stack.restart_relay()
    wait_until(lambda: "Relayed 20 of 20" in relay.log(), 30, what="the relay to publish again")
    worker = stack.start_worker(concurrency=2)
    drained = drain(engine, timeout=60)

    wait_until(lambda: worker.log().count("Skipping job") >= 20, 30, what="every job twice")

    verdict = check(engine, history)
    verdict.assert_safe()
    assert verdict.dup_exec == 0
    skipped = worker.log().count("Skipping job")
    add_row(
        "T13 relay killed between publish and mark",
        verdict,
        drain=drained,
        notes=f"{skipped} duplicate deliveries skipped by the claim",
    )
