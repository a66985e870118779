"""The API's Prometheus registry: HTTP requests, this process, and the job ledger's state.

One registry per app built, so a test may build several apps in one process.
"""

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, ProcessCollector, disable_created_metrics
from prometheus_fastapi_instrumentator import Instrumentator

from durable_jobs import JobsCollector

# The application's prefix, shared with the engine's metrics.
NAMESPACE = "durable_jobs"


def instrument(app: FastAPI) -> CollectorRegistry:
    """Count and time every request of `app`; returns the registry /metrics serves."""
    # No `_created` series beside every counter and histogram: Prometheus does not need them.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobsCollector())
    # The standard process_* names, which dashboards for any exporter expect.
    ProcessCollector(registry=registry)
    Instrumentator(
        # Unmatched paths (scans, typos) would each become a label value.
        should_ignore_untemplated=True,
        excluded_handlers=["/metrics"],
        registry=registry,
    ).instrument(app, metric_namespace=NAMESPACE)
    return registry
