"""The project's own programs as real processes: Celery workers (with the fault tests'
tasks), relays, beat and API servers, each started and waited for until it is ready."""

import sys
from pathlib import Path

import httpx

from tests.support.runner import VENV_BIN, Process, free_port, wait_until


def start_worker(
    name: str,
    env: dict[str, str],
    concurrency: int = 2,
    extra: list[str] | None = None,
    celery_app: str = "tests.support.fault_worker",
) -> Process:
    """A real Celery worker, also loading the fault tests' misbehaving tasks."""
    argv = [
        str(VENV_BIN / "celery"),
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
        *(extra or []),
    ]
    worker = Process(f"worker-{name}", argv, env)
    wait_until(
        lambda: " ready." in worker.log() or worker.popen.poll() is not None,
        30,
        what=f"worker {name} to start",
    )
    assert worker.popen.poll() is None, worker.log()
    return worker


def start_relay(env: dict[str, str]) -> Process:
    relay = Process("relay", [sys.executable, "-m", "app.relay"], env)
    wait_until(lambda: "Relay started" in relay.log(), 20, what="relay to start")
    return relay


def start_beat(env: dict[str, str], schedule_file: Path) -> Process:
    argv = [
        str(VENV_BIN / "celery"),
        "-A",
        "tests.support.fault_worker",
        "beat",
        "-l",
        "info",
        "-s",
        str(schedule_file),
    ]
    return Process("beat", argv, env)


def start_api(env: dict[str, str]) -> tuple[Process, str]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    api = Process("api", argv, env)
    base_url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base_url}/api/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, 30, what="API to answer")
    return api, base_url
