"""The smoke test's checks, each one step of `python -m tests.smoke`, in that order."""

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request

from tests.smoke.compose import (
    EMAIL_RETRY_BACKOFF,
    EMAIL_SEND_SECONDS,
    TASK,
    Stack,
    echo,
    elapsed,
    fail,
    log_time,
    say,
)
from tests.support.runner import wait_until

APP_SERVICES = ("migrate", "api", "worker", "relay", "flower")


def tools() -> None:
    if shutil.which("docker") is None:
        fail("docker is not installed")
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if version.returncode != 0:
        fail("Docker Compose v2 (docker compose) is missing")


def start(stack: Stack) -> None:
    say(
        f"Starting the stack (project {stack.project}, broker {stack.broker}, "
        f"API on port {stack.api_port})"
    )
    stack.compose("down", "-v", "--remove-orphans", quiet=True)  # leftovers of an aborted run
    started = time.time()
    if not stack.up("--build", "--wait"):
        fail("the stack did not become healthy")
    up_seconds = elapsed(started)
    stack.compose("ps")
    stack.summary.append(f"stack build + start until healthy: {up_seconds}s")


def services_healthy(stack: Stack) -> None:
    say("Every service is healthy (migrate ran once and exited 0)")
    text = stack.compose("ps", "-a", "--format", "json", capture=True).stdout.strip()
    # One JSON array (older Compose) or one object per line (newer).
    rows = json.loads(text) if text.startswith("[") else [json.loads(x) for x in text.splitlines()]
    problems = []
    for row in rows:
        service, state, health = row["Service"], row["State"], row.get("Health") or ""
        exit_code = row.get("ExitCode")
        echo(f"  {service}: {state} {health}".rstrip())
        if service == "migrate":
            if state != "exited" or exit_code != 0:
                problems.append(f"migrate: {state}, exit code {exit_code}")
        elif state != "running" or health != "healthy":
            problems.append(f"{service}: {state} {health or 'without a health check'}")
    expected = {"db", "redis", "migrate", "api", "worker", "relay", "flower"}
    if stack.broker == "rabbitmq":
        expected.add("rabbitmq")
    missing = sorted(expected - {row["Service"] for row in rows})
    if missing:
        problems.append(f"missing services: {missing}")
    if problems:
        fail(f"not every service is healthy: {'; '.join(problems)}")


def exposure(stack: Stack) -> None:
    say("Exposure: no broker or database port on the host; the app runs as a non-root user")
    published_ports = ["db:5432", "redis:6379"]
    if stack.broker == "rabbitmq":
        published_ports.append("rabbitmq:5672")
    for service_port in published_ports:
        service, port = service_port.split(":")
        done = stack.compose("port", service, port, capture=True)
        host_port = done.stdout.strip()
        if done.returncode == 0 and host_port and host_port != ":0":
            fail(f"{service_port} is published on the host as {host_port}")
    for service in ("api", "worker", "relay", "flower"):
        done = stack.exec(service, "id", "-u")
        if done.returncode != 0:
            fail(f"docker compose exec {service} id -u failed")
        if done.stdout.strip() == "0":
            fail(f"{service} runs as root")
    ping = stack.exec("redis", "env", "-u", "REDISCLI_AUTH", "redis-cli", "ping")
    redis_reply = (ping.stdout + ping.stderr).strip()
    if "NOAUTH" not in redis_reply:
        fail(f"Redis answered a client without its password: {redis_reply}")
    echo(
        f"not published: {' '.join(published_ports)}; api, worker, relay, flower run as "
        f"non-root; Redis: {redis_reply}"
    )


def metrics(stack: Stack) -> None:
    say("Metrics: /metrics answers in Prometheus format")
    lines = stack.get(f"{stack.origin}/metrics").text.splitlines()
    for sample in ("durable_jobs_ledger_up 1", "durable_jobs_broker_up 1"):
        if not any(line.startswith(sample) for line in lines):
            fail(f"/metrics: no '{sample}' line")
    samples = sum(1 for line in lines if "a" <= line[:1] <= "z")
    echo(f"{samples} samples, durable_jobs_ledger_up 1, durable_jobs_broker_up 1")


def flower(stack: Stack) -> None:
    say("Flower asks for a password")
    anonymous = stack.get(f"{stack.flower}/").status
    if anonymous != 401:
        fail(f"Flower without credentials answered {anonymous}, not 401")
    wrong = stack.get(f"{stack.flower}/", auth=("smoke", "wrong")).status
    if wrong != 401:
        fail(f"Flower with a wrong password answered {wrong}, not 401")
    user, password = stack.flower_basic_auth.split(":", 1)
    right = stack.get(f"{stack.flower}/workers", auth=(user, password)).status
    if right != 200:
        fail(f"Flower with the password answered {right}, not 200")
    metrics_anonymous = stack.get(f"{stack.flower}/metrics").status
    if metrics_anonymous != 401:
        fail(f"Flower's /metrics without credentials answered {metrics_anonymous}, not 401")
    echo("Flower: 401 without or with a wrong password (/metrics too), 200 with it")
    stack.summary.append(
        "every service healthy; no broker or database port published; non-root; Redis wants "
        "its password; /metrics answers; Flower asks for a password"
    )


def ok_workers(stack: Stack) -> tuple[int, int, str]:
    """GET /health/workers: its status, the workers in state ok, the body."""
    answer = stack.http("GET", "/health/workers")
    if answer.status != 200:
        return answer.status, 0, answer.text
    ok = sum(worker["state"] == "ok" for worker in answer.json()["workers"])
    return answer.status, ok, answer.text


def health_probes(stack: Stack) -> None:
    say("Health probes")
    for path in ("/health", "/health/ready"):
        answer = stack.http("GET", path)
        if answer.status != 200:
            fail(f"GET {path} answered {answer.status}: {answer.text}")
    echo(f"ready: {answer.text}")
    status, ok, body = ok_workers(stack)
    if status != 200:
        fail(f"GET /health/workers answered {status}: {body}")
    if ok < 1:
        fail(f"GET /health/workers lists no worker in state ok: {body}")
    echo(f"workers: {body}")


def happy_path(stack: Stack) -> None:
    say("Happy path: a new user's welcome email is sent by the worker")
    user = stack.create_user("ok")
    job = user.job_id
    received = log_time(stack.wait_for_log(f"Task {TASK}[{job}] received"))
    started = log_time(stack.wait_for_log(f"Job {job} ({TASK}) attempt 1 started"))
    succeeded = log_time(stack.wait_for_log(f"Job {job} ({TASK}) succeeded on attempt 1"))
    to_received = elapsed(user.posted_at, received)
    to_start = elapsed(user.posted_at, started)
    to_done = elapsed(user.posted_at, succeeded)
    stack.show_job_lines(job)
    answer = stack.http("GET", f"/users/{user.user_id}")
    if answer.status != 200:
        fail(f"GET /users/{user.user_id} answered {answer.status}: {answer.text}")
    if not answer.json()["welcome_email_sent_at"]:
        fail(f"the job succeeded but welcome_email_sent_at is still null: {answer.text}")
    answer = stack.http("GET", f"/jobs/{job}")
    if answer.status != 200:
        fail(f"GET /jobs/{job} answered {answer.status}: {answer.text}")
    if (answer.json()["state"], answer.json()["attempts"]) != ("succeeded", 1):
        fail(f"job {job} should be succeeded after 1 attempt: {answer.text}")
    echo(f"job {job}: succeeded on attempt 1; user {user.user_id} has welcome_email_sent_at set")
    post = f"{user.seconds:.6f}"
    echo(
        f"POST /users {post}s | enqueue->received {to_received}s | enqueue->start {to_start}s"
        f" | enqueue->done {to_done}s"
    )
    stack.summary += [
        f"POST /users response time: {post}s",
        f"enqueue->start (POST sent to 'attempt 1 started'): {to_start}s "
        f"(received after {to_received}s)",
        f"enqueue->succeeded: {to_done}s (EMAIL_SEND_SECONDS={EMAIL_SEND_SECONDS})",
    ]


def settings_reach_the_worker(stack: Stack) -> None:
    say("Settings: the env file's values reach the worker, and so does a change to one")
    expected = {
        "job_retention_days": "9.0",
        "worker_forget_after_seconds": "1234.0",
        "log_format": "json",
    }
    for name, value in expected.items():
        seen = stack.worker_setting(name)
        if seen != value:
            fail(f"the worker has {name}={seen}, not {value}")
    echo(
        "worker: JOB_RETENTION_DAYS=9 and WORKER_FORGET_AFTER_SECONDS=1234 from the env file;",
        "        LOG_FORMAT=json although the env file says text",
    )


def failure_path(stack: Stack) -> str:
    """A job whose every send fails: 3 retries, then failed. Returns its id."""
    say("Failure path: the worker's mail server fails 4 times (3 retries, then failed)")
    started = time.time()
    stack.set_env("EMAIL_SIMULATED_FAILURES", "4")
    if not stack.up("--no-deps", "--wait", "worker"):
        fail("the worker did not come back healthy with EMAIL_SIMULATED_FAILURES=4")
    seen = stack.worker_setting("email_simulated_failures")
    if seen != "4":
        fail(f"EMAIL_SIMULATED_FAILURES=4 in the env file, but the worker has {seen}")
    echo(
        "EMAIL_SIMULATED_FAILURES=4 written to the env file; the worker was recreated with it "
        f"in {elapsed(started)}s"
    )
    stack.summary.append(
        "settings: the env file's values reach the worker, and a changed one after compose up"
    )
    user = stack.create_user("failing")
    job = user.job_id
    stack.wait_for_log(f"Task {TASK}[{job}] received")
    for retry in (1, 2, 3):
        line = stack.wait_for_log(f"Job {job} ({TASK}) attempt {retry} failed (ConnectionError")
        if f"retry {retry} of 3" not in line:
            fail(f"attempt {retry} did not schedule retry {retry} of 3: {line}")
        echo(f"attempt {retry} failed, retry {retry} of 3 scheduled")
    final = stack.wait_for_log(f"Job {job} ({TASK}) failed on attempt 4")
    to_failed = elapsed(user.posted_at, log_time(final))
    stack.show_job_lines(job)
    retry_line = f"Task {TASK}[{job}] retry: Retry at"  # due later, in the ledger
    retry_lines = sum(retry_line in line for line in stack.service_logs("worker").splitlines())
    if retry_lines != 3:
        fail(f"expected 3 Celery 'retry: Retry at' lines for {job}, saw {retry_lines}")
    answer = stack.http("GET", f"/jobs/{job}")
    if answer.status != 200:
        fail(f"GET /jobs/{job} answered {answer.status}: {answer.text}")
    body = answer.json()
    state, attempts, last_error = body["state"], body["attempts"], body["last_error"] or ""
    if (state, attempts) != ("failed", 4):
        fail(f"job {job} should be failed after 4 attempts, is {state} after {attempts}: {body}")
    if "ConnectionError" not in last_error:
        fail(f"job {job}: unexpected last_error: {last_error}")
    echo(f"job {job}: state={state} attempts={attempts} last_error={last_error}")
    stack.summary.append(
        f"failing job: 3 retries then failed on attempt 4, {to_failed}s after the POST "
        f"(EMAIL_RETRY_BACKOFF={EMAIL_RETRY_BACKOFF})"
    )
    return job


def ledger_page(stack: Stack, failed_job: str) -> None:
    say("Ledger page: served, and the JSON it reads lists the failed job")
    page = stack.get(f"{stack.origin}/admin/jobs")
    if page.status != 200:
        fail(f"GET /admin/jobs answered {page.status}")
    if "<title>Job ledger</title>" not in page.text:
        fail("GET /admin/jobs is not the ledger page")
    script = stack.get(f"{stack.origin}/admin/static/ledger.js")
    if script.status != 200:
        fail(f"GET /admin/static/ledger.js answered {script.status}")
    answer = stack.http("GET", "/jobs?state=failed")
    if answer.status != 200:
        fail(f"GET /jobs?state=failed answered {answer.status}: {answer.text}")
    if not any(i["id"] == failed_job and i["last_error"] for i in answer.json()["items"]):
        fail(
            f"the ledger page's list (GET /jobs?state=failed) lacks job {failed_job} "
            f"with its error: {answer.text}"
        )
    echo(f"GET /admin/jobs -> 200; GET /jobs?state=failed lists job {failed_job} with its error")
    stack.summary.append(f"ledger page: served; the failed jobs it lists include {failed_job}")


def oversized_bodies(stack: Stack) -> None:
    """Plain urllib: it sends the whole body, so a server that answers 413 and closes
    too early shows up as a reset connection."""
    say("Oversized bodies: 20 of 20 POSTs of 2 MB get their 413 (no connection reset)")
    body = json.dumps({"email": "big@example.com", "full_name": "x" * 2_000_000}).encode()
    outcomes = []
    for _ in range(20):
        request = urllib.request.Request(
            f"{stack.base}/users",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                outcomes.append(str(response.status))
        except urllib.error.HTTPError as answer:
            outcomes.append(str(answer.code))
        except OSError as error:  # URLError: a reset connection
            outcomes.append(type(error).__name__)
    echo("answers: " + ", ".join(outcomes))
    if outcomes != ["413"] * 20:
        fail("not every oversized body got its 413: expected 413 twenty times")
    stack.summary.append("oversized bodies: 20 of 20 got 413")


def scaling(stack: Stack) -> None:
    say("Scaling: docker compose up -d --scale worker=3 --wait (the mail server works again)")
    stack.set_env("EMAIL_SIMULATED_FAILURES", "0")
    started = time.time()
    if not stack.up("--scale", "worker=3", "--wait"):
        fail("scaling to 3 workers failed")
    scale_seconds = elapsed(started)
    stack.compose("ps", "worker")
    seen: list[tuple[int, int, str]] = []

    def three_ok() -> bool:
        seen[:] = [ok_workers(stack)]
        return seen[0][:2] == (200, 3)

    try:
        wait_until(three_ok, stack.timeout, interval=1, what="3 workers")
    except AssertionError:
        status, _, body = seen[0]
        fail(f"GET /health/workers does not list 3 workers: {status} {body}")
    workers = json.loads(seen[0][2])["workers"]
    names = [f"{w['name']} (concurrency {w['concurrency']})" for w in workers]
    echo(f"workers: {', '.join(names)}")
    user = stack.create_user("scaled")
    stack.wait_for_log(f"Job {user.job_id} ({TASK}) succeeded on attempt 1")
    echo(f"job {user.job_id} succeeded with 3 workers")
    stack.summary.append(
        f"scale to 3 workers until healthy: {scale_seconds}s; /health/workers lists 3"
    )


def json_logs(stack: Stack) -> None:
    say("Logs: every line of every app container is JSON")
    problems, counts = [], []
    logs = {service: stack.service_logs("--no-log-prefix", service) for service in APP_SERVICES}
    for service, text in logs.items():
        lines = [line for line in text.splitlines() if line.strip()]
        for line in lines:
            try:
                is_object = isinstance(json.loads(line), dict)
            except ValueError:
                is_object = False
            if not is_object:
                problems.append(f"{service}: {line[:200]}")
        counts.append(f"{service} {len(lines)}")
        if not lines:
            problems.append(f"{service}: logged nothing")
    echo("JSON lines: " + ", ".join(counts))
    echo(*(f"  not JSON: {problem}" for problem in problems[:20]))
    if problems:
        fail("a container logged a line that is not JSON")
    if '"logger": "uvicorn.access"' not in logs["api"]:
        fail("no uvicorn access line in the API's logs")
    stack.summary.append(
        "logs: every line of migrate, api, worker, relay and flower is JSON, access lines too"
    )


def monitoring(stack: Stack) -> None:
    """The monitoring profile: every dashboard panel's query has data in the real
    Prometheus, every scrape job is up and every alert rule loaded."""
    say("Monitoring: every dashboard panel has data, every alert rule is loaded")
    checked = subprocess.run(
        [
            "python3",
            "scripts/check_monitoring.py",
            f"http://127.0.0.1:{stack.prometheus_port}",
            "monitoring/grafana/durable-jobs.json",
        ],
        check=False,
    )
    if checked.returncode != 0:
        fail("monitoring: a dashboard panel without data, or an alert rule not loaded")
    stack.summary.append("monitoring: every panel's query has data, every alert rule loaded")
