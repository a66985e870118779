"""A worker's metrics: counted in its pool processes, served by its main process.

Celery's prefork pool counts in child processes, which a scrape of the main process
cannot see in their memory. With WORKER_METRICS_PORT set, the main process switches
prometheus_client to multiprocess mode before the pool forks (`use_own_directory`, at
`worker_init`): every process then writes its values to files in a directory of this
worker's own, and the endpoint sums them at each scrape. A pool process that exits
leaves its file, so counters never go down when `max_tasks_per_child` recycles one.

The alternative, counters in a PostgreSQL table updated with each outcome, would put
one hot row per task and outcome under every worker's writes; memory-mapped files cost
about 20 µs per job and no lock shared between workers.
"""

import logging
import os
import shutil
import tempfile
from typing import Any

from celery import bootsteps
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server, values
from prometheus_client.multiprocess import MultiProcessCollector

from durable_jobs import _metrics as metrics
from durable_jobs._declare import declared_tasks
from durable_jobs._runtime import current

logger = logging.getLogger(__name__)

_directory: str | None = None


def use_own_directory() -> None:
    """Count in a fresh directory of this worker's, in this process and every process
    forked from it from now on."""
    global _directory
    _directory = tempfile.mkdtemp(prefix="durable-jobs-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _directory
    # prometheus_client chose its value class at import; the engine's metrics all have
    # labels, so each value is made at first use, with the class chosen now.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


class MetricsEndpointStep(bootsteps.StartStopStep):
    """Serves /metrics on WORKER_METRICS_PORT for as long as the worker runs."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self._server: Any = None
        super().__init__(worker, **kwargs)

    def include_if(self, worker: Any) -> bool:
        return _directory is not None

    def start(self, worker: Any) -> None:
        assert _directory is not None
        metrics.start_at_zero(handle.policy.name for handle in declared_tasks())
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=_directory)  # type: ignore[no-untyped-call]
        # The main process's own CPU, memory and file descriptors.
        ProcessCollector(registry=registry)
        port = current().settings.worker_metrics_port
        try:
            self._server, _ = start_http_server(port, registry=registry)
        except OSError as exc:
            # The worker runs its jobs all the same; Prometheus reports the target down.
            logger.error("Worker metrics not served: port %d: %s", port, exc)
            return
        logger.info("Worker metrics served on port %d at /metrics", port)

    def stop(self, worker: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        # Pool processes still finishing write to their open files, unlinked or not.
        if _directory is not None:
            shutil.rmtree(_directory, ignore_errors=True)

    def terminate(self, worker: Any) -> None:
        self.stop(worker)
