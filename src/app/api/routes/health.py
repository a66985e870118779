from fastapi import APIRouter, status
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.core.db import engine
from app.jobs.inspection import BrokerUnavailable, connected_workers, ping_broker
from app.schemas.health import (
    DependencyStatus,
    Liveness,
    Readiness,
    WorkersHealth,
    WorkerStatus,
)

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
    """The Celery workers that answer a broadcast, within two seconds at most."""
    try:
        found = connected_workers(BROKER_DEADLINE_SECONDS)
    except BrokerUnavailable as exc:
        report = WorkersHealth(status="unavailable", workers=[], error=str(exc))
        return _json(report, ok=False)
    report = WorkersHealth(
        status="ok" if found else "unavailable",
        workers=[
            WorkerStatus(
                name=w.name,
                active_tasks=w.active_tasks,
                processed=w.processed,
                concurrency=w.concurrency,
            )
            for w in found
        ],
        error=None if found else "no worker answered",
    )
    return _json(report, ok=bool(found))


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
