"""Prometheus metrics, all named `durable_jobs_...`.

Two kinds, from two kinds of process:

- Events, counted where they happen: a worker's pool process increments the counters
  and observes the histograms as it claims a job and records its outcome. They only go
  up, whatever the ledger's pruning does. The worker's main process serves them (see
  `_worker/metrics_endpoint.py`), summed over its pool processes.
- State, read at scrape time by `JobsCollector` in the API: the backlog, the broker's
  queues, the workers' heartbeats. Every query reads an index range of unfinished jobs
  or a small table, never the whole ledger, so a scrape stays fast however many
  finished jobs the ledger keeps.
"""

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text

from durable_jobs import _broker as broker
from durable_jobs._declare import declared_tasks
from durable_jobs._health import worker_reports
from durable_jobs._models import JobState
from durable_jobs._runtime import current, transaction

logger = logging.getLogger(__name__)

PREFIX = "durable_jobs_"
# Seconds; from a near-instant start to a task at a generous time limit.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
LEDGER_TIMEOUT_MS = 2000
UNFINISHED_STATES = (JobState.QUEUED, JobState.RETRYING, JobState.STARTED)
WORKER_STATES = ("ok", "disconnected", "stuck", "lost")
RETRY_REASONS = ("error", "infrastructure")

# Registered on no registry: a worker's endpoint reads them from the multiprocess
# directory. Every one has labels, so its values are made at first use, in the pool
# process that counts, after the worker switched prometheus_client to that directory.
ATTEMPTS = Counter(
    f"{PREFIX}job_attempts", "Attempts started (jobs claimed by a worker)", ["task"], registry=None
)
FINISHED = Counter(
    f"{PREFIX}jobs_finished",
    "Jobs that reached a final state in a worker: succeeded or failed",
    ["task", "state"],
    registry=None,
)
RETRIES = Counter(
    f"{PREFIX}job_retries",
    "Retries scheduled after a failed attempt; reason: error (the task's retry policy) "
    "or infrastructure (the database or the broker went away)",
    ["task", "reason"],
    registry=None,
)
ENQUEUE_TO_START = Histogram(
    f"{PREFIX}job_enqueue_to_start_seconds",
    "From the enqueue's commit to the first attempt's claim",
    ["task"],
    buckets=BUCKETS,
    registry=None,
)
RUN_SECONDS = Histogram(
    f"{PREFIX}job_run_seconds",
    "Run time of each attempt that ended (succeeded, failed or scheduled a retry)",
    ["task"],
    buckets=BUCKETS,
    registry=None,
)


def start_at_zero(tasks: Iterable[str]) -> None:
    """Every series of every task, at 0, before any job runs: a counter that first
    appears at 1 hides its first increase from rate()."""
    for task in tasks:
        ATTEMPTS.labels(task)
        for state in (JobState.SUCCEEDED, JobState.FAILED):
            FINISHED.labels(task, state.value)
        for reason in RETRY_REASONS:
            RETRIES.labels(task, reason)
        ENQUEUE_TO_START.labels(task)
        RUN_SECONDS.labels(task)


def attempt_started(task: str, attempt: int, waited_seconds: float | None) -> None:
    ATTEMPTS.labels(task).inc()
    # Later attempts waited for a backoff, not for a worker.
    if attempt == 1 and waited_seconds is not None:
        ENQUEUE_TO_START.labels(task).observe(max(waited_seconds, 0.0))


def attempt_ended(task: str, run_seconds: float) -> None:
    RUN_SECONDS.labels(task).observe(run_seconds)


def job_finished(task: str, state: JobState) -> None:
    FINISHED.labels(task, state.value).inc()


def retry_scheduled(task: str, reason: str) -> None:
    RETRIES.labels(task, reason).inc()


# Each from an index: the partial indexes of unfinished and of unpublished rows, and
# (state, created_at).
_WAITING = f"('{JobState.QUEUED}', '{JobState.RETRYING}', '{JobState.STARTED}')"
_UNFINISHED = text(
    f"""
    SELECT state, task_name, count(*) AS jobs FROM jobs
    WHERE state IN {_WAITING}
    GROUP BY state, task_name
    """
)
_BACKLOG = text(
    f"""
    SELECT
      (SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8
         FROM jobs WHERE state = '{JobState.QUEUED}') AS oldest_queued,
      (SELECT count(*) FROM jobs
         WHERE published_at IS NULL AND state IN {_WAITING}) AS outbox,
      (SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8 FROM jobs
         WHERE published_at IS NULL AND state IN {_WAITING})
        AS outbox_oldest
    """
)


class JobsCollector(Collector):
    """The ledger's and the broker's state at scrape time. Register it on a Prometheus
    registry of the host's (the API's); it reads the process's engine."""

    def collect(self) -> Iterator[Metric]:
        yield from self._ledger()
        yield from self._broker()

    def _ledger(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(f"{PREFIX}ledger_up", "1 when the job ledger answered this scrape")
        try:
            with transaction() as session:
                session.execute(text(f"SET LOCAL statement_timeout = {LEDGER_TIMEOUT_MS}"))
                unfinished = list(session.execute(_UNFINISHED).mappings())
                backlog = session.execute(_BACKLOG).mappings().one()
                workers = worker_reports(session)
        except Exception:
            logger.warning("Metrics: the ledger did not answer", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _unfinished_jobs(unfinished)
        yield _gauge(
            "oldest_queued_age_seconds",
            "Age of the oldest job in state queued (0 when none)",
            backlog["oldest_queued"] or 0.0,
        )
        yield _gauge(
            "outbox_backlog",
            "Jobs committed but not yet handed to the broker (the relay publishes them)",
            backlog["outbox"],
        )
        yield _gauge(
            "outbox_oldest_age_seconds",
            "Age of the oldest unpublished job (0 when none)",
            backlog["outbox_oldest"] or 0.0,
        )
        by_state = GaugeMetricFamily(
            f"{PREFIX}workers", "Workers by state, judged from their heartbeats", labels=["state"]
        )
        for state in WORKER_STATES:
            by_state.add_metric([state], sum(1 for w in workers if w.state == state))
        yield by_state

    def _broker(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(f"{PREFIX}broker_up", "1 when the broker answered this scrape")
        depth = GaugeMetricFamily(
            f"{PREFIX}broker_queue_depth",
            "Messages waiting in each configured queue (and its dead-letter queue on RabbitMQ)",
            labels=["queue"],
        )
        try:
            depths = _queue_depths()
        except Exception as exc:
            logger.warning("Metrics: the broker did not answer: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for queue, length in sorted(depths.items()):
            depth.add_metric([queue], length)
        yield depth


def _unfinished_jobs(groups: list[Any]) -> Metric:
    jobs = GaugeMetricFamily(
        f"{PREFIX}jobs",
        "Unfinished jobs in the ledger by state (queued, retrying, started) and task",
        labels=["state", "task"],
    )
    counts = {(g["state"], g["task_name"]): g["jobs"] for g in groups}
    # Every unfinished state of every task declared or seen, so a state that empties
    # reads 0 rather than vanishing.
    tasks = {handle.policy.name for handle in declared_tasks()} | {task for _, task in counts}
    for task in sorted(tasks):
        for state in UNFINISHED_STATES:
            jobs.add_metric([state.value, task], counts.get((state.value, task), 0))
    return jobs


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}{name}", documentation, value=float(value))


def _queue_depths() -> dict[str, int]:
    runtime = current()
    configured: Iterable[Any] = runtime.celery.conf.task_queues or []
    names = broker.queue_names(runtime.settings, (queue.name for queue in configured))
    return broker.queue_depths(runtime.settings, broker.watched_queues(runtime.settings, names))
