"""A whole stack of real processes (API, relay, workers) on a broker of the test's choosing,
and jobs of the recording task committed straight to its outbox."""

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

from app.core.db import transaction
from durable_jobs import _ledger as ledger
from tests.faults.checker import History, Outcome
from tests.support.environment import RUN_ID
from tests.support.fault_worker import record
from tests.support.launchers import start_api, start_relay, start_worker
from tests.support.ledger import new_user_payload
from tests.support.runner import Process, child_env
from tests.support.settings import settings


@dataclass
class Stack:
    env: dict[str, str]
    api_url: str = ""
    warm_up_email: str = ""
    processes: list[Process] = field(default_factory=list)
    workers: list[Process] = field(default_factory=list)

    @property
    def relay(self) -> Process:
        return next(process for process in self.processes if process.name == "relay")

    def start_api(self) -> None:
        api, self.api_url = start_api(self.env)
        self.processes.append(api)

    def start_relay(self, **overrides: str) -> Process:
        env = {**self.env, **{key.upper(): value for key, value in overrides.items()}}
        relay = start_relay(env)
        self.processes.append(relay)
        return relay

    def restart_relay(self, **overrides: str) -> Process:
        for relay in [process for process in self.processes if process.name == "relay"]:
            relay.stop()
            self.processes.remove(relay)
        return self.start_relay(**overrides)

    def start_worker(self, concurrency: int = 2, **overrides: str) -> Process:
        env = {**self.env, **{key.upper(): value for key, value in overrides.items()}}
        name = f"fault{len(self.workers) + 1}-{RUN_ID}"
        worker = start_worker(name, env, concurrency)
        self.workers.append(worker)
        return worker

    def worker_logs(self) -> str:
        return "\n".join(worker.log() for worker in self.workers)

    def create_user(self, **headers: str) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = httpx.post(
            f"{self.api_url}/api/v1/users", json=new_user_payload(), headers=headers, timeout=30
        )
        return response, time.monotonic() - started

    def history(self) -> History:
        """A history that already holds the stack's warm-up sign-up, a job like any other."""
        history = History()
        history.add(self.warm_up_email, Outcome.OK, time.monotonic(), 0.0)
        return history

    def sign_up(self, history: History, n: int, timeout: float = 10) -> httpx.Response | None:
        """POST a new user and record the outcome, keyed by the email, in `history`."""
        payload = new_user_payload(f"{n}-{RUN_ID}")
        started = time.monotonic()
        try:
            response = httpx.post(f"{self.api_url}/api/v1/users", json=payload, timeout=timeout)
        except httpx.HTTPError:
            history.add(payload["email"], Outcome.INFO, started, time.monotonic() - started)
            return None
        outcome = Outcome.OK if response.status_code == 201 else Outcome.FAIL
        if response.status_code >= 500 and response.status_code != 503:
            outcome = Outcome.INFO  # a 500 may come after the commit
        history.add(payload["email"], outcome, started, time.monotonic() - started)
        return response

    def stop(self) -> None:
        for process in [*self.workers, *self.processes]:
            process.stop(timeout=15)


def add_record_jobs(
    history: History, count: int, seconds: float = 0.0, **options: object
) -> list[str]:
    """Commit `count` jobs of the recording task to the outbox (the relay publishes
    them) and record each as accepted; returns their keys."""
    keys = [f"job-{index}-{time.monotonic_ns()}" for index in range(count)]
    now = time.monotonic()
    with transaction() as session:
        for key in keys:
            ledger.add_job(
                session, settings, record.policy, {"key": key, "seconds": seconds, **options}
            )
    for key in keys:
        history.add(key, Outcome.OK, now, 0.0)
    return keys


def running_stack(broker_url: str, **overrides: str) -> Iterator[Stack]:
    running = Stack(env=child_env({"BROKER_URL": broker_url, **overrides}))
    running.start_api()
    running.start_relay()
    warm_up, _ = running.create_user()  # the API's first database connection is not the test
    assert warm_up.status_code == 201
    running.warm_up_email = warm_up.json()["email"]
    yield running
    running.stop()
