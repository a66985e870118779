from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from durable_jobs import JobsCollector

registry = CollectorRegistry(auto_describe=False)
registry.register(JobsCollector())

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Prometheus text format, computed from the ledger and the broker at each scrape."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
