"""Prometheus metrics computed at scrape time from the ledger and the broker.

Nothing is counted in process memory: every API process answers a scrape with the
same numbers, read from the shared stores (PostgreSQL and the broker), so any number
of API and worker processes needs no multiprocess set-up. The histograms are built
from finished jobs still in the ledger: pruning finished jobs makes them drop, which
Prometheus's rate() and increase() treat as a counter reset.
"""

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text

from durable_jobs import _broker as broker
from durable_jobs._models import JobState
from durable_jobs._runtime import current, transaction

logger = logging.getLogger(__name__)

# Seconds; from a near-instant start to a task at a generous time limit.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
LEDGER_TIMEOUT_MS = 5000


def _bucket_columns(column: str, where: str) -> str:
    """Cumulative bucket counts, as Prometheus wants them: one column per upper bound."""
    return ",\n".join(
        f"count(*) FILTER (WHERE {where} AND {column} <= {bound!r}) AS {column}_{i}"
        for i, bound in enumerate(BUCKETS)
    )


# One pass over the ledger. The enqueue-to-start latency counts first attempts only:
# started_at is the latest attempt's, so for a retried job it would include backoff.
_BY_TASK_AND_STATE = text(
    f"""
    SELECT task_name, state, count(*) AS jobs, coalesce(sum(retries), 0) AS retries,
           count(*) FILTER (WHERE finished AND attempts = 1) AS wait_count,
           coalesce(sum(wait) FILTER (WHERE finished AND attempts = 1), 0) AS wait_sum,
           {_bucket_columns("wait", "finished AND attempts = 1")},
           count(*) FILTER (WHERE finished) AS run_count,
           coalesce(sum(run) FILTER (WHERE finished), 0) AS run_sum,
           {_bucket_columns("run", "finished")}
    FROM (
        SELECT task_name, state, retries, attempts,
               (state IN ('{JobState.SUCCEEDED}', '{JobState.FAILED}') AND started_at IS NOT NULL
                AND finished_at IS NOT NULL) AS finished,
               EXTRACT(EPOCH FROM started_at - created_at)::float8 AS wait,
               EXTRACT(EPOCH FROM finished_at - started_at)::float8 AS run
        FROM jobs
    ) AS j
    GROUP BY task_name, state
    """
)
# Each from an index: (state, created_at) and the partial index of unpublished rows.
_WAITING = f"('{JobState.QUEUED}', '{JobState.RETRYING}', '{JobState.STARTED}')"
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
    """Register it on a Prometheus registry of the host's; it reads the process's engine."""

    def collect(self) -> Iterator[Metric]:
        yield from self._ledger()
        yield from self._broker()

    def _ledger(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("ledger_up", "1 when the job ledger (PostgreSQL) answered")
        try:
            with transaction() as session:
                session.execute(text(f"SET LOCAL statement_timeout = {LEDGER_TIMEOUT_MS}"))
                groups = list(session.execute(_BY_TASK_AND_STATE).mappings())
                backlog = session.execute(_BACKLOG).mappings().one()
        except Exception:
            logger.warning("Metrics: the ledger did not answer", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _job_metrics(groups)
        yield _gauge(
            "jobs_oldest_queued_age_seconds",
            "Age of the oldest job in state queued (0 when none)",
            backlog["oldest_queued"] or 0.0,
        )
        yield _gauge(
            "jobs_outbox_backlog",
            "Jobs committed but not yet handed to the broker (the relay publishes them)",
            backlog["outbox"],
        )
        yield _gauge(
            "jobs_outbox_oldest_age_seconds",
            "Age of the oldest unpublished job (0 when none)",
            backlog["outbox_oldest"] or 0.0,
        )

    def _broker(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("broker_up", "1 when the broker answered this scrape")
        depth = GaugeMetricFamily(
            "broker_queue_depth", "Messages waiting in each configured queue", labels=["queue"]
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


def _job_metrics(groups: list[Any]) -> Iterator[Metric]:
    jobs = GaugeMetricFamily(
        "jobs", "Jobs in the ledger by state and task", labels=["state", "task"]
    )
    seen: set[tuple[str, str]] = set()
    for group in groups:
        jobs.add_metric([group["state"], group["task_name"]], group["jobs"])
        seen.add((group["state"], group["task_name"]))
    # Every state of every known task, so a state that empties reads 0, not absent.
    for task in {task for _, task in seen}:
        for state in JobState:
            if (state.value, task) not in seen:
                jobs.add_metric([state.value, task], 0)
    yield jobs
    yield _gauge(
        "jobs_failed",
        "Jobs in state failed",
        sum(g["jobs"] for g in groups if g["state"] == JobState.FAILED),
    )
    yield _gauge(
        "jobs_retries",
        "Retries scheduled, summed over the jobs in the ledger",
        sum(g["retries"] for g in groups),
    )
    yield _histogram(
        "jobs_enqueue_to_start_seconds",
        "From enqueue to start, over finished jobs that ran once",
        groups,
        "wait",
    )
    yield _histogram(
        "jobs_run_seconds", "Run time of the last attempt, over finished jobs", groups, "run"
    )


def _histogram(name: str, documentation: str, groups: list[Any], prefix: str) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=["task"])
    totals: dict[str, list[float]] = {}
    for group in groups:
        row = totals.setdefault(group["task_name"], [0.0] * (len(BUCKETS) + 2))
        for i in range(len(BUCKETS)):
            row[i] += group[f"{prefix}_{i}"]
        row[-2] += group[f"{prefix}_count"]
        row[-1] += group[f"{prefix}_sum"]
    for task, row in sorted(totals.items()):
        buckets = [(_le(bound), row[i]) for i, bound in enumerate(BUCKETS)]
        buckets.append(("+Inf", row[-2]))
        family.add_metric([task], buckets, sum_value=row[-1])
    return family


def _le(bound: float) -> str:
    return repr(float(bound))


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


def _queue_depths() -> dict[str, int]:
    runtime = current()
    configured: Iterable[Any] = runtime.celery.conf.task_queues or []
    names = broker.queue_names(runtime.settings, (queue.name for queue in configured))
    return broker.queue_depths(runtime.settings, broker.watched_queues(runtime.settings, names))
