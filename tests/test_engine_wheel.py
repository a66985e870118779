"""The engine is a distribution of its own: its wheel installs into a fresh virtual
environment and works there without the service."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.runner import ROOT

PROGRAM = """
import sys
from durable_jobs import JobsSettings, create_celery, task

@task("checks.noop")
def noop() -> None: ...

celery_app = create_celery(JobsSettings())
assert "checks.noop" in celery_app.tasks, sorted(celery_app.tasks)
assert not any(name == "app" or name.startswith("app.") for name in sys.modules)
print("ok")
"""


def test_the_wheel_installs_and_runs_without_the_service(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")

    def run(*argv: str, cwd: Path = ROOT) -> str:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    dist, venv = tmp_path / "dist", tmp_path / "venv"
    run(uv, "build", "--quiet", "--package", "durable-jobs", "--wheel", "--out-dir", str(dist))
    [wheel] = dist.glob("durable_jobs-*.whl")
    run(uv, "venv", "--quiet", "--python", "3.11", str(venv))
    # Offline: every dependency is in uv's cache already, as this project's own.
    python = str(venv / "bin" / "python")
    run(uv, "pip", "install", "--quiet", "--offline", "--python", python, str(wheel))

    assert run(python, "-c", PROGRAM, cwd=tmp_path).strip() == "ok"
