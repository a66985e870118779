"""The compose stack under test: its env file, `docker compose` calls, its logs, and
HTTP requests to its API."""

import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import httpx

from tests.support.runner import ROOT, wait_until

TASK = "users.send_welcome_email"
EMAIL_RETRY_BACKOFF = "1"
EMAIL_SEND_SECONDS = "0.5"
# Some Compose versions put terminal escapes (ESC[2K) before log lines even without a tty.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# 2026-11-29T06:47:46.279123456Z, as `docker compose logs --timestamps` writes it.
DOCKER_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z")


class SmokeFailure(Exception):
    """A check failed; the message says which and what was seen."""


def fail(message: str) -> NoReturn:
    raise SmokeFailure(message)


def echo(*lines: str, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    for line in lines:
        stream.write(line + "\n")
    stream.flush()


def say(message: str) -> None:
    echo(f"\n==> {message}")


def elapsed(since: float, until: float | None = None) -> str:
    return f"{(time.time() if until is None else until) - since:.3f}"


def log_time(line: str) -> float:
    """Epoch seconds of a line from `wait_for_log` (Docker's timestamp, always UTC)."""
    found = DOCKER_TIMESTAMP.search(line)
    if not found:
        fail(f"no Docker timestamp in log line: {line!r}")
    base = datetime.strptime(found[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return base.timestamp() + float(found[2] or 0)


@dataclass
class Answer:
    """One HTTP answer: its status, its body and how long it took."""

    status: int
    text: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class CreatedUser:
    user_id: int
    job_id: str
    posted_at: float
    seconds: float


def _random_hex() -> str:
    return secrets.token_hex(16)


@dataclass
class Stack:
    """One compose project with fresh secrets and an env file of its own."""

    broker: str = field(default_factory=lambda: os.environ.get("SMOKE_BROKER", "redis"))
    api_port: str = field(default_factory=lambda: os.environ.get("SMOKE_API_PORT", "18000"))
    flower_port: str = field(default_factory=lambda: os.environ.get("SMOKE_FLOWER_PORT", "15555"))
    prometheus_port: str = field(
        default_factory=lambda: os.environ.get("SMOKE_PROMETHEUS_PORT", "19090")
    )
    timeout: float = field(default_factory=lambda: float(os.environ.get("SMOKE_TIMEOUT", "60")))
    keep: bool = field(default_factory=lambda: os.environ.get("SMOKE_KEEP", "0") == "1")
    # Fresh secrets each run: the jobs API is on for this stack only.
    admin_token: str = field(default_factory=lambda: f"smoke-{_random_hex()}")
    redis_password: str = field(default_factory=_random_hex)
    postgres_password: str = field(default_factory=_random_hex)
    rabbitmq_password: str = field(default_factory=_random_hex)
    flower_password: str = field(default_factory=_random_hex)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="smoke-")))
    summary: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.broker not in ("redis", "rabbitmq"):
            echo(f"SMOKE_BROKER must be redis or rabbitmq, not {self.broker}", err=True)
            raise SystemExit(2)
        self.project = os.environ.get("COMPOSE_PROJECT_NAME", f"durable-jobs-smoke-{self.broker}")
        self.flower_basic_auth = f"smoke:{self.flower_password}"
        self.origin = f"http://127.0.0.1:{self.api_port}"
        self.base = f"{self.origin}/api/v1"
        self.flower = f"http://127.0.0.1:{self.flower_port}"
        self.env_file = self.tmp / "smoke.env"
        rabbitmq = self.broker == "rabbitmq"
        self.env = {
            **os.environ,
            "LC_ALL": "C",
            "COMPOSE_PROJECT_NAME": self.project,
            "API_PORT": self.api_port,
            "FLOWER_PORT": self.flower_port,
            "PROMETHEUS_PORT": self.prometheus_port,
            "ADMIN_TOKEN": self.admin_token,
            "REDIS_PASSWORD": self.redis_password,
            "POSTGRES_PASSWORD": self.postgres_password,
            "RABBITMQ_PASSWORD": self.rabbitmq_password,
            "FLOWER_BASIC_AUTH": self.flower_basic_auth,
            "COMPOSE_PROFILES": "rabbitmq,monitoring" if rabbitmq else "monitoring",
            "COMPOSE_BROKER_URL": (
                f"amqp://app:{self.rabbitmq_password}@rabbitmq:5672//" if rabbitmq else ""
            ),
            "ENV_FILE": str(self.env_file),
        }
        self.write_env_file()

    def write_env_file(self) -> None:
        """The stack's env file, in place of ./.env (which this test never reads): what
        `make up` would write, plus values a developer's .env would hold. Compose reads
        it for ${...} too, so nothing in ./.env can change the test."""
        values = [
            "LOG_FORMAT=text",
            "LOG_LEVEL=INFO",
            "EMAIL_SIMULATED_FAILURES=0",
            "EMAIL_MAX_RETRIES=3",
            f"EMAIL_RETRY_BACKOFF={EMAIL_RETRY_BACKOFF}",
            f"EMAIL_SEND_SECONDS={EMAIL_SEND_SECONDS}",
            "JOB_RETENTION_DAYS=9",
            "WORKER_FORGET_AFTER_SECONDS=1234",
            f"POSTGRES_PASSWORD={self.postgres_password}",
            f"REDIS_PASSWORD={self.redis_password}",
            f"RABBITMQ_PASSWORD={self.rabbitmq_password}",
            f"FLOWER_BASIC_AUTH={self.flower_basic_auth}",
            f"ADMIN_TOKEN={self.admin_token}",
        ]
        example = (ROOT / ".env.example").read_text()
        self.env_file.write_text(example + "\n".join(values) + "\n")

    def set_env(self, name: str, value: str) -> None:
        """Change a setting in the env file, as a user edits .env."""
        text = self.env_file.read_text()
        self.env_file.write_text(re.sub(rf"^{name}=.*$", f"{name}={value}", text, flags=re.M))

    # -- docker compose ----------------------------------------------------------------

    def compose(
        self, *args: str, capture: bool = False, quiet: bool = False
    ) -> "subprocess.CompletedProcess[str]":
        """`docker compose` on the stack; its output shown unless captured or quiet."""
        argv = ["docker", "compose", "--ansi", "never", "--env-file", str(self.env_file), *args]
        output = subprocess.PIPE if capture else subprocess.DEVNULL if quiet else None
        return subprocess.run(
            argv, cwd=ROOT, env=self.env, text=True, stdout=output, stderr=output, check=False
        )

    def up(self, *args: str) -> bool:
        return self.compose("up", "-d", *args).returncode == 0

    def exec(self, service: str, *argv: str) -> "subprocess.CompletedProcess[str]":
        return self.compose("exec", "-T", service, *argv, capture=True)

    def service_logs(self, *args: str) -> str:
        argv = ["docker", "compose", "--ansi", "never", "--env-file", str(self.env_file)]
        done = subprocess.run(
            [*argv, "logs", "--no-color", *args],
            cwd=ROOT,
            env=self.env,
            text=True,
            capture_output=True,
            check=False,
        )
        return ANSI_ESCAPE.sub("", done.stdout)

    def worker_logs(self) -> str:
        return self.service_logs("--timestamps", "--no-log-prefix", "worker")

    def worker_setting(self, name: str) -> str:
        """The value the worker's Settings hold."""
        program = "import sys; from app.core.config import get_settings; "
        program += "print(getattr(get_settings(), sys.argv[1]))"
        done = self.exec("worker", "python", "-c", program, name)
        if done.returncode != 0:
            fail(f"could not read the worker's settings: {done.stderr.strip()}")
        return done.stdout.strip()

    def wait_for_log(self, text: str) -> str:
        """The first worker log line that contains `text` (with Docker's RFC 3339
        timestamp), waiting up to the timeout for it."""
        found: list[str] = []

        def logged() -> bool:
            found[:] = [line for line in self.worker_logs().splitlines() if text in line][:1]
            return bool(found)

        try:
            wait_until(logged, self.timeout, interval=0.5, what=text)
        except AssertionError:
            fail(f"no worker log line with '{text}' within {self.timeout:g}s")
        return found[0]

    def show_job_lines(self, job_id: str) -> None:
        echo(f"--- docker compose logs worker | grep {job_id} ---")
        lines = [line for line in self.service_logs("worker").splitlines() if job_id in line]
        echo(*lines, "---")

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "--timeout", "30", quiet=True)

    def remove_tmp(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- HTTP ------------------------------------------------------------------------

    def http(self, method: str, path: str, body: dict[str, Any] | None = None) -> Answer:
        """A request to the API with the admin token."""
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        try:
            response = httpx.request(
                method, f"{self.base}{path}", json=body, headers=headers, timeout=10
            )
        except httpx.HTTPError as exc:
            fail(f"{method} {path}: request failed: {exc!r}")
        return Answer(response.status_code, response.text, response.elapsed.total_seconds())

    def get(self, url: str, auth: tuple[str, str] | None = None) -> Answer:
        """GET any URL without the token (the ledger page's files, Flower, /metrics)."""
        try:
            response = httpx.get(url, auth=auth, timeout=10)
        except httpx.HTTPError as exc:
            fail(f"GET {url}: request failed: {exc!r}")
        return Answer(response.status_code, response.text, response.elapsed.total_seconds())

    def create_user(self, tag: str) -> CreatedUser:
        email = f"smoke-{tag}-{random.randrange(32768)}@example.com"
        posted_at = time.time()
        answer = self.http("POST", "/users", {"email": email, "full_name": f"Smoke Test {tag}"})
        if not 200 <= answer.status < 300:
            fail(f"POST /users answered {answer.status}: {answer.text}")
        body = answer.json()
        user_id, job_id = body.get("id"), body.get("welcome_email_job_id")
        if not user_id or not job_id:
            fail(f"POST /users: no id or job id in {answer.text}")
        echo(
            f"POST /users -> {answer.status} in {answer.seconds:.6f}s: user {user_id}, job {job_id}"
        )
        return CreatedUser(int(user_id), str(job_id), posted_at, answer.seconds)
