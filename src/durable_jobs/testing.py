"""Helpers and pytest fixtures for testing durable tasks against real services.

Enable the fixtures with `pytest_plugins = ["durable_jobs.testing"]` in a conftest and
override `durable_celery_app` with the import path of the Celery app your workers run
(`"myapp.worker.celery_app"`). Tests get a real worker process (never eager mode: a
test that claims delivery must deliver), `wait_for_job` and ledger assertions.
Needs pytest (`durable-jobs[testing]`).
"""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable_jobs._models import Job, JobState
from durable_jobs._relay import run_forever
from durable_jobs._runtime import transaction

__all__ = [
    "WorkerProcess",
    "assert_job",
    "durable_celery_app",
    "durable_relay",
    "durable_worker",
    "job_row",
    "start_worker",
    "wait_for_job",
]

WORKER_START_SECONDS = 30.0


class WorkerProcess:
    """A `celery worker` child process whose output goes to a log file."""

    def __init__(self, celery_app: str, name: str, concurrency: int, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix=f"worker-{name}-", suffix=".log")[1])
        self._log = self.log_path.open("wb")
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            celery_app,
            "worker",
            "-l",
            "info",
            "-c",
            str(concurrency),
            "-n",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
        ]
        self.popen = subprocess.Popen(
            argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = WORKER_START_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.log()}")
            if " ready." in self.log():
                return
            time.sleep(0.1)
        raise TimeoutError(f"worker {self.name} not ready after {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 30) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL to the worker and its pool."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(10)
        self._log.close()


def start_worker(
    celery_app: str,
    *,
    name: str | None = None,
    concurrency: int = 1,
    env: dict[str, str] | None = None,
) -> WorkerProcess:
    """Start a real worker of `celery_app` (an import path) and wait until it consumes."""
    worker = WorkerProcess(
        celery_app,
        name or f"test-{uuid.uuid4().hex[:8]}",
        concurrency,
        {**os.environ, **(env or {})},
    )
    try:
        worker.wait_ready()
    except BaseException:
        worker.stop()
        raise
    return worker


def job_row(job_id: uuid.UUID | str) -> Job | None:
    """The job's ledger row as it is now."""
    with transaction() as session:
        return session.get(Job, uuid.UUID(str(job_id)))


def wait_for_job(
    job_id: uuid.UUID | str, state: JobState = JobState.SUCCEEDED, timeout: float = 20
) -> Job:
    """Wait until the job reaches `state` in the ledger and return its row; fail the
    test with the row's last state if it does not."""
    deadline = time.monotonic() + timeout
    row = job_row(job_id)
    while time.monotonic() < deadline:
        if row is not None and row.state == state:
            return row
        time.sleep(0.1)
        row = job_row(job_id)
    last = "no row" if row is None else f"{row.state}, last error {row.last_error!r}"
    raise AssertionError(f"job {job_id} not {state} after {timeout}s: {last}")


def assert_job(
    job_id: uuid.UUID | str,
    *,
    state: JobState | None = None,
    attempts: int | None = None,
    task_name: str | None = None,
) -> Job:
    """Assert what the ledger holds for the job; return the row."""
    row = job_row(job_id)
    assert row is not None, f"no job {job_id} in the ledger"
    expected = {"state": state, "attempts": attempts, "task_name": task_name}
    actual = {"state": row.state, "attempts": row.attempts, "task_name": row.task_name}
    for field, value in expected.items():
        assert value is None or actual[field] == value, (field, actual[field], value)
    return row


@pytest.fixture
def durable_celery_app() -> str:
    """Override with the import path of the Celery app your workers run."""
    raise pytest.UsageError(
        "Override the durable_celery_app fixture with your Celery app's import path"
    )


@pytest.fixture
def durable_worker(durable_celery_app: str) -> Iterator[WorkerProcess]:
    """A real worker process for the test, stopped after it."""
    worker = start_worker(durable_celery_app)
    yield worker
    worker.stop()


@pytest.fixture
def durable_relay() -> Iterator[None]:
    """The relay, in a thread of the test process, for the test: it publishes scheduled
    jobs and retries when they fall due (and whatever the outbox holds)."""
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(stop,), name="test-relay", daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(30)
