"""Adding a task is one decorated function in a module of `app.tasks`, and one call."""

import importlib
import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import tasks
from app.core.config import get_settings
from app.core.db import transaction
from durable_jobs import Job
from durable_jobs.testing import WorkerProcess, assert_job, wait_for_job

TASK_MODULE = """
from durable_jobs import task


@task("examples.double", retries=1)
def double(number: int) -> int:
    return 2 * number
"""


@pytest.fixture(scope="module")
def new_task_module() -> Iterator[str]:
    """A module of the tasks package that exists for these tests only."""
    name = f"new_task_{uuid.uuid4().hex[:8]}"
    path = Path(tasks.__file__).parent / f"{name}.py"
    path.write_text(textwrap.dedent(TASK_MODULE))
    try:
        yield f"{tasks.__name__}.{name}"
    finally:
        path.unlink()
        sys.modules.pop(f"{tasks.__name__}.{name}", None)


def test_a_new_task_module_is_found_and_its_task_runs(
    new_task_module: str, durable_worker: WorkerProcess
) -> None:
    # The worker started after the module was written, and found it: no list names it.
    double = importlib.import_module(new_task_module).double

    with transaction() as session:
        job_id = double.enqueue(session, number=21).id

    wait_for_job(job_id, timeout=15)
    assert_job(job_id, attempts=1, task_name="examples.double")
    assert "examples.double" in durable_worker.log()


def test_a_wrong_argument_is_refused_before_any_row_is_written(new_task_module: str) -> None:
    double = importlib.import_module(new_task_module).double

    with transaction() as session:
        with pytest.raises(TypeError, match="examples.double: missing a required argument"):
            double.enqueue(session, numbr=21)
        with pytest.raises(TypeError, match="examples.double: arguments must be JSON values"):
            double.enqueue(session, number=object())
        assert session.scalar(select(func.count()).select_from(Job)) == 0


QUEUES_PROGRAM = """
import json
from app.core.config import get_settings
from durable_jobs import create_celery, task

@task("reports.build", queue="reports")
def build_report(report_id: int) -> None: ...

settings = get_settings()
celery_app = create_celery(settings)
print(json.dumps(sorted(queue.name for queue in celery_app.conf.task_queues)))
"""


def test_a_queue_is_declared_by_the_task_that_uses_it() -> None:
    # A fresh interpreter: a declaration lasts for the life of its process.
    done = subprocess.run(
        [sys.executable, "-c", QUEUES_PROGRAM], capture_output=True, text=True, check=True
    )

    assert json.loads(done.stdout.splitlines()[-1]) == sorted(
        ["reports", get_settings().task_default_queue]
    )
