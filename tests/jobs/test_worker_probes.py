"""Worker probes: a liveness file and heartbeat rows that do not depend on the broker,
and /api/v1/health/workers judging each worker ok, disconnected, stuck or lost."""

import signal
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.support.broker import private_broker
from tests.support.factories import WorkerFactory
from tests.support.ledger import new_user_payload
from tests.support.runner import wait_until


def reported_states(client: TestClient) -> dict[str, str]:
    workers: list[dict[str, Any]] = client.get("/api/v1/health/workers").json()["workers"]
    return {w["name"].split("@")[0].rsplit("-", 1)[0]: w["state"] for w in workers}


def modified_at(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


def test_a_running_worker_keeps_its_liveness_file_fresh(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    liveness = tmp_path / "heartbeat"
    worker_factory(worker_heartbeat_file=str(liveness))
    wait_until(liveness.exists, 10, what="the liveness file")
    first = modified_at(liveness)

    wait_until(lambda: modified_at(liveness) > first, 5, what="the file to be touched again")


def test_a_worker_cut_off_from_the_broker_stays_alive_and_reports_disconnected(
    worker_factory: WorkerFactory, client: TestClient, tmp_path: Path
) -> None:
    liveness = tmp_path / "heartbeat"
    with private_broker() as broker:
        worker_factory(broker_url=broker.url, worker_heartbeat_file=str(liveness))
        wait_until(lambda: reported_states(client).get("w1") == "ok", 10, what="ok")

        broker.stop()
        wait_until(
            lambda: reported_states(client).get("w1") == "disconnected", 20, what="disconnected"
        )
        touched_while_down = modified_at(liveness)
        wait_until(lambda: modified_at(liveness) > touched_while_down, 5, what="a fresh file")
        response = client.get("/api/v1/health/workers")
        assert response.status_code == 503
        assert "is disconnected" in response.json()["error"]

        broker.start()
        wait_until(lambda: reported_states(client).get("w1") == "ok", 30, what="ok again")


def test_a_frozen_worker_is_reported_lost_and_its_liveness_file_goes_stale(
    worker_factory: WorkerFactory, client: TestClient, tmp_path: Path
) -> None:
    liveness = tmp_path / "heartbeat"
    frozen = worker_factory(worker_heartbeat_file=str(liveness))
    healthy = worker_factory("w2")
    wait_until(lambda: reported_states(client) == {"w1": "ok", "w2": "ok"}, 10, what="both ok")

    frozen.signal(signal.SIGSTOP)
    try:
        frozen_at = time.time()
        wait_until(lambda: reported_states(client).get("w1") == "lost", 15, what="w1 lost")
        assert modified_at(liveness) < frozen_at + 1
        response = client.get("/api/v1/health/workers").json()
        assert response["status"] == "degraded"
        assert reported_states(client)["w2"] == "ok"
    finally:
        frozen.signal(signal.SIGCONT)
    assert healthy.popen.poll() is None


def test_a_job_running_past_the_stuck_threshold_marks_its_worker_stuck(
    worker_factory: WorkerFactory, client: TestClient
) -> None:
    worker_factory(email_send_seconds="4", worker_stuck_after_seconds="1")
    wait_until(lambda: reported_states(client).get("w1") == "ok", 10, what="ok")

    assert client.post("/api/v1/users", json=new_user_payload()).status_code == 201

    wait_until(lambda: reported_states(client).get("w1") == "stuck", 10, what="stuck")
    [reported] = client.get("/api/v1/health/workers").json()["workers"]
    assert reported["active_jobs"] == 1 and reported["stuck_jobs"] == 1
    wait_until(lambda: reported_states(client).get("w1") == "ok", 15, what="ok once it ends")


def test_a_worker_that_shuts_down_leaves_the_report(
    worker_factory: WorkerFactory, client: TestClient
) -> None:
    worker = worker_factory()
    wait_until(lambda: "w1" in reported_states(client), 10, what="the worker's heartbeat")

    worker.stop()

    assert reported_states(client) == {}


def test_a_worker_that_has_just_started_is_reported_ok_at_once(
    worker_factory: WorkerFactory, client: TestClient
) -> None:
    # Beats far apart: without a beat right after the consumer's connect, the worker's
    # first row (written before it connected) would say disconnected for 30 s.
    worker_factory(worker_heartbeat_seconds="30", worker_lost_after_seconds="60")
    wait_until(lambda: "w1" in reported_states(client), 5, what="the first heartbeat")

    response = client.get("/api/v1/health/workers")

    assert reported_states(client) == {"w1": "ok"}
    assert response.status_code == 200
