import logging
from dataclasses import asdict

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.core.db import engine, transaction
from app.schemas.health import (
    DependencyStatus,
    Liveness,
    Readiness,
    WorkersHealth,
    WorkerStatus,
)
from durable_jobs import (
    BrokerUnavailable,
    WorkerReport,
    connected_workers,
    ping_broker,
    worker_reports,
)

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/health", tags=["health"])

BROKER_DEADLINE_SECONDS = 1.5
UNAVAILABLE = {503: {"description": "A dependency is unreachable, or no worker answers"}}


@router.get("")
def liveness() -> Liveness:
    """The API process is up; says nothing about its dependencies."""
    return Liveness()


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
def readiness() -> JSONResponse:
    """Ready to serve: the database and the broker both answer."""
    report = Readiness(status="ok", database=_check_database(), broker=_check_broker())
    if not (report.database.ok and report.broker.ok):
        report.status = "unavailable"
    return _json(report, ok=report.status == "ok")


@router.get("/workers", response_model=WorkersHealth, responses={503: {"model": WorkersHealth}})
def workers() -> JSONResponse:
    """Each worker's state from the heartbeats it writes to the ledger, so the report
    stands while the broker is down; from a broker broadcast if the ledger fails."""
    try:
        with transaction() as session:
            reports = worker_reports(session)
    except SQLAlchemyError:
        logger.warning("Worker heartbeats unreadable; asking the broker", exc_info=True)
        return _json(*_report_from_broker())
    return _json(*_report_from_heartbeats(reports))


def _report_from_heartbeats(reports: list[WorkerReport]) -> tuple[WorkersHealth, bool]:
    ok = [r for r in reports if r.state == "ok"]
    not_ok = [f"{r.name} is {r.state}" for r in reports if r.state != "ok"]
    if not reports:
        error: str | None = "no worker has sent a heartbeat"
    else:
        error = "; ".join(not_ok) or None
    report = WorkersHealth(
        status="unavailable" if not ok else "degraded" if not_ok else "ok",
        source="heartbeats",
        workers=[WorkerStatus(**asdict(r)) for r in reports],
        error=error,
    )
    return report, bool(ok)


def _report_from_broker() -> tuple[WorkersHealth, bool]:
    try:
        found = connected_workers(BROKER_DEADLINE_SECONDS)
    except BrokerUnavailable as exc:
        return WorkersHealth(
            status="unavailable", source="broker", workers=[], error=str(exc)
        ), False
    report = WorkersHealth(
        status="ok" if found else "unavailable",
        source="broker",
        workers=[
            WorkerStatus(
                name=w.name,
                state="ok",
                active_jobs=w.active_tasks,
                processed=w.processed,
                concurrency=w.concurrency,
            )
            for w in found
        ],
        error=None if found else "no worker answered",
    )
    return report, bool(found)


def _check_database() -> DependencyStatus:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return DependencyStatus(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
    return DependencyStatus(ok=True)


def _check_broker() -> DependencyStatus:
    try:
        ping_broker(BROKER_DEADLINE_SECONDS)
    except BrokerUnavailable as exc:
        return DependencyStatus(ok=False, error=str(exc))
    return DependencyStatus(ok=True)


def _json(report: Readiness | WorkersHealth, ok: bool) -> JSONResponse:
    code = status.HTTP_200_OK if ok else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(report.model_dump(mode="json"), status_code=code)
