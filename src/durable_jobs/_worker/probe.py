"""Worker probes: liveness that does not depend on the broker, progress, heartbeat rows.

The worker's event loop ticks (`LoopTick`, a consumer bootstep). A thread of the
worker's main process (`WorkerProbe`) looks every WORKER_HEARTBEAT_SECONDS at that
tick and at the jobs the worker holds, then:

- touches the liveness file, unless the loop has stopped turning while connected.
  While the broker is down Celery reconnects outside its loop, so a worker waiting
  for the broker is alive: restarting it would not bring the broker back;
- upserts the worker's row in `worker_heartbeats` (PostgreSQL, not the broker), which
  `worker_reports` reads (the service's /api/v1/health/workers).

It also stops the jobs of this worker that were asked to cancel and did not stop at
`report_progress` within JOB_CANCEL_GRACE_SECONDS: it records each as cancelled (so
no later outcome can say otherwise) and kills the pool process running it. The request
is read from the ledger, so it holds across worker and broker restarts.

The thread shares no lock with the pool processes forked beside it: it opens a
short psycopg connection of its own for each beat and never touches the app's
engine, whose pool lock a fork could otherwise copy into a child while held.
"""

import logging
import os
import signal
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from celery import bootsteps
from celery.worker import state as worker_state

from durable_jobs._db import libpq_dsn
from durable_jobs._runtime import current
from durable_jobs._settings import JobsSettings
from durable_jobs._task import as_job_id

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0
DATABASE_TIMEOUT_SECONDS = 2

_UPSERT = """
INSERT INTO worker_heartbeats AS h (
    name, pid, concurrency, started_at, beat_at, active_jobs, processed, stuck_jobs,
    broker_connected, loop_stalled
) VALUES (
    %(name)s, %(pid)s, %(concurrency)s, %(started_at)s, now(), %(active_jobs)s,
    %(processed)s, %(stuck_jobs)s, %(broker_connected)s, %(loop_stalled)s
)
ON CONFLICT (name) DO UPDATE SET
    pid = EXCLUDED.pid, concurrency = EXCLUDED.concurrency,
    started_at = EXCLUDED.started_at, beat_at = EXCLUDED.beat_at,
    active_jobs = EXCLUDED.active_jobs, processed = EXCLUDED.processed,
    stuck_jobs = EXCLUDED.stuck_jobs, broker_connected = EXCLUDED.broker_connected,
    loop_stalled = EXCLUDED.loop_stalled
"""
_CANCEL_OVERDUE = """
UPDATE jobs SET state = 'cancelled', finished_at = now(), lease_expires_at = NULL,
    last_error = %(reason)s
WHERE id = ANY(%(ids)s) AND worker = %(name)s AND state = 'started'
    AND cancel_requested_at <= now() - make_interval(secs => %(grace)s)
RETURNING id, worker_pid
"""
_FORGET_LOST = "DELETE FROM worker_heartbeats WHERE beat_at < now() - make_interval(secs => %s)"
_DELETE_OWN = "DELETE FROM worker_heartbeats WHERE name = %s AND pid = %s"


class WorkerProbe:
    def __init__(self, worker: Any, settings: JobsSettings) -> None:
        self._worker = worker
        self._settings = settings
        self._name: str = worker.hostname
        self._concurrency: int | None = getattr(worker, "concurrency", None)
        self._started_at = datetime.now(UTC)
        self._dsn = libpq_dsn(settings.database_url)
        self._last_tick = time.monotonic()
        self._database_failing = False
        self._stopping = threading.Event()
        self._beat_now = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and leave the report: a worker that shut down is not lost."""
        self._stopping.set()
        self._beat_now.set()
        self._thread.join(timeout=DATABASE_TIMEOUT_SECONDS * 2)
        self._execute((_DELETE_OWN, (self._name, os.getpid())))

    def tick(self) -> None:
        """Called from the worker's event loop: the loop is turning."""
        self._last_tick = time.monotonic()

    def beat_soon(self) -> None:
        """Beat now, not at the next interval: the consumer has just connected."""
        self._beat_now.set()

    def _run(self) -> None:
        # The first beat waits for the consumer's connect (or one interval, when the
        # broker is down), so a worker that has just started is not reported disconnected.
        while True:
            self._beat_now.wait(self._settings.worker_heartbeat_seconds)
            self._beat_now.clear()
            if self._stopping.is_set():
                return
            self.beat()

    def beat(self) -> None:
        seen = self._observe()
        if not seen["loop_stalled"]:
            self._touch_liveness_file()
        self._execute(
            (_UPSERT, self._row(seen)),
            (_FORGET_LOST, (self._settings.worker_forget_after_seconds,)),
        )
        self.stop_overdue_cancels()

    def stop_overdue_cancels(self) -> None:
        """Terminate the pool processes of this worker's jobs whose cancel is overdue."""
        running = _active_job_pids()
        if not running:
            return
        grace = self._settings.job_cancel_grace_seconds
        params = {
            "ids": list(running),
            "name": self._name,
            "grace": grace,
            "reason": f"cancelled: its process was terminated {grace:g}s after the request",
        }
        try:
            with self._connect() as connection:
                stopped = connection.execute(_CANCEL_OVERDUE, params).fetchall()
        except psycopg.Error as exc:
            logger.warning("Worker probe: cancel requests not read: %s", exc)
            return
        for job_id, ledger_pid in stopped:
            pid = running.get(job_id)
            # Only a pool process of ours, and never this process (a solo pool).
            if pid is None or pid != ledger_pid or pid == os.getpid():
                continue
            logger.warning("Job %s: cancel overdue; terminating pool process %d", job_id, pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _observe(self) -> dict[str, Any]:
        """What the worker is doing now: the observed columns of its heartbeat row."""
        now = time.monotonic()
        broker_connected = getattr(self._worker.consumer, "connection", None) is not None
        if not broker_connected:
            # Reconnecting happens outside the loop: waiting for the broker is not a stall.
            self._last_tick = now
        stuck_after = self._settings.effective_worker_stuck_after_seconds
        running_for = [time.time() - started for started in _active_job_start_times()]
        return {
            "active_jobs": len(running_for),
            "processed": worker_state.all_total_count[0],
            "stuck_jobs": sum(1 for seconds in running_for if seconds > stuck_after),
            "broker_connected": broker_connected,
            "loop_stalled": now - self._last_tick > self._settings.worker_loop_stall_seconds,
        }

    def _row(self, seen: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": self._name,
            "pid": os.getpid(),
            "concurrency": self._concurrency,
            "started_at": self._started_at,
            **seen,
        }

    def _touch_liveness_file(self) -> None:
        path = self._settings.worker_heartbeat_file
        if path is None:
            return
        try:
            Path(path).touch()
        except OSError as exc:
            logger.warning("Worker probe: cannot touch the liveness file %s: %s", path, exc)

    def _connect(self) -> psycopg.Connection[Any]:
        """A short connection of the probe's own, bounded in connect and statements."""
        return psycopg.connect(
            self._dsn,
            autocommit=True,
            connect_timeout=DATABASE_TIMEOUT_SECONDS,
            options=f"-c statement_timeout={DATABASE_TIMEOUT_SECONDS * 1000}",
        )

    def _execute(self, *statements: tuple[str, Any]) -> None:
        """Run the statements on one short connection of the probe's own."""
        try:
            with self._connect() as connection:
                for statement, params in statements:
                    connection.execute(statement, params)
        except psycopg.Error as exc:
            if not self._database_failing:
                logger.warning("Worker probe: the heartbeat was not recorded: %s", exc)
            self._database_failing = True
            return
        if self._database_failing:
            logger.info("Worker probe: heartbeats recorded again")
        self._database_failing = False


def _active_job_start_times() -> list[float]:
    # The event loop may add a request while this thread iterates: try again.
    for _ in range(5):
        try:
            return [r.time_start for r in list(worker_state.active_requests) if r.time_start]
        except RuntimeError:
            continue
    return []


def _active_job_pids() -> dict[uuid.UUID, int]:
    """The running jobs' ids and the pool processes running them."""
    for _ in range(5):
        try:
            requests = list(worker_state.active_requests)
        except RuntimeError:
            continue
        pids: dict[uuid.UUID, int] = {}
        for request in requests:
            job_id = as_job_id(request.id)
            if job_id is not None and request.worker_pid:
                pids[job_id] = request.worker_pid
        return pids
    return {}


class WorkerProbeStep(bootsteps.StartStopStep):
    """Runs the probe's thread for as long as the worker runs."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        worker.probe = None
        super().__init__(worker, **kwargs)

    def start(self, worker: Any) -> None:
        worker.probe = WorkerProbe(worker, current().settings)
        worker.probe.start()

    def stop(self, worker: Any) -> None:
        if worker.probe is not None:
            worker.probe.stop()
            worker.probe = None

    def terminate(self, worker: Any) -> None:
        self.stop(worker)


class LoopTick(bootsteps.StartStopStep):
    """Ticks the probe from the consumer's event loop; restarted with each reconnect,
    after which the probe beats at once."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def __init__(self, consumer: Any, **kwargs: Any) -> None:
        self._timer_entry: Any = None
        super().__init__(consumer, **kwargs)

    def start(self, consumer: Any) -> None:
        probe: WorkerProbe | None = getattr(consumer.controller, "probe", None)
        if probe is not None:
            self._timer_entry = consumer.timer.call_repeatedly(TICK_SECONDS, probe.tick)
            probe.tick()
            probe.beat_soon()

    def stop(self, consumer: Any) -> None:
        if self._timer_entry is not None:
            consumer.timer.cancel(self._timer_entry)
            self._timer_entry = None

    shutdown = stop
