"""The jobs API (list, read, retry, cancel) and the ledger page, as routers a host
mounts behind its own auth: `jobs_router(session=..., dependencies=[...])`; and the
status router, where a caller holding a job's status token reads that job only."""

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.params import Depends as DependsParam
from fastapi.responses import FileResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from durable_jobs import _service as jobs
from durable_jobs._models import JobState
from durable_jobs._schemas import JobPage, JobRead, JobStatus

# PostgreSQL text cannot hold NUL: a filter carrying one is refused (422), not a 500.
NO_NUL_PATTERN = r"^[^\x00]*$"

Responses = dict[int | str, dict[str, Any]]


def jobs_router(
    *,
    session: Callable[..., Any],
    dependencies: Sequence[DependsParam] = (),
    retry_dependencies: Sequence[DependsParam] = (),
    responses: Responses | None = None,
    retry_responses: Responses | None = None,
    error_model: type[BaseModel] | None = None,
    prefix: str = "/jobs",
) -> APIRouter:
    """The jobs API. `session` is the host's dependency yielding the request's
    transaction; `dependencies` guard every route (the host's auth);
    `retry_dependencies` guard the retry only (back-pressure, say)."""
    SessionDep = Annotated[Session, Depends(session, scope="function")]
    router = APIRouter(
        prefix=prefix, tags=["jobs"], dependencies=list(dependencies), responses=responses
    )
    state_conflict: Responses = {
        409: {"model": error_model, "description": "The job is not in a state for this"}
    }

    @router.get("", responses={400: {"model": error_model, "description": "Malformed cursor"}})
    def list_jobs(
        session: SessionDep,
        state: JobState | None = None,
        task: Annotated[
            str | None, Query(max_length=200, pattern=NO_NUL_PATTERN, description="A task name")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> JobPage:
        """Jobs, newest first; pass `next_cursor` back as `cursor` for the next page."""
        with _answering_errors():
            found, next_cursor = jobs.list_jobs(
                session, state=state, task_name=task, limit=limit, cursor=cursor
            )
        return JobPage(items=[JobRead.model_validate(j) for j in found], next_cursor=next_cursor)

    @router.get("/{job_id}")
    def read_job(job_id: uuid.UUID, session: SessionDep) -> JobRead:
        with _answering_errors():
            return JobRead.model_validate(jobs.get_job(session, job_id))

    @router.post(
        "/{job_id}/retry",
        status_code=202,
        dependencies=list(retry_dependencies),
        responses={**state_conflict, **(retry_responses or {})},
    )
    def retry_job(job_id: uuid.UUID, session: SessionDep) -> JobRead:
        """Run a failed job again, as a new attempt of the same job."""
        with _answering_errors():
            return JobRead.model_validate(jobs.retry_job(session, job_id))

    @router.post(
        "/{job_id}/cancel",
        responses={
            **state_conflict,
            202: {"model": JobRead, "description": "Running: its worker is asked to stop it"},
        },
    )
    def cancel_job(job_id: uuid.UUID, session: SessionDep, response: Response) -> JobRead:
        """Cancel a job. Queued or retrying: cancelled now (200). Running: the ledger
        records the request and its worker stops it (202, state still started)."""
        with _answering_errors():
            job = JobRead.model_validate(jobs.cancel_job(session, job_id))
        if job.state is JobState.STARTED:
            response.status_code = status.HTTP_202_ACCEPTED
        return job

    return router


def job_status_router(
    *,
    session: Callable[..., Any],
    error_model: type[BaseModel] | None = None,
    prefix: str = "/job-status",
) -> APIRouter:
    """`GET {prefix}/{job_id}?token=...`: one job's state, progress and result for whoever
    holds the token `grant_status_token` gave for it; no other auth. Any other id, a
    malformed one or a wrong token answers the same 404. Build the URL with
    `request.url_for(JOB_STATUS_ROUTE, job_id=...)` plus the token."""
    SessionDep = Annotated[Session, Depends(session, scope="function")]
    router = APIRouter(prefix=prefix, tags=["job status"])

    @router.get(
        "/{job_id}",
        name=JOB_STATUS_ROUTE,
        responses={404: {"model": error_model, "description": "No such job status"}},
    )
    def read_job_status(
        job_id: str, session: SessionDep, response: Response, token: str = ""
    ) -> JobStatus:
        """The job's state, progress and result."""
        try:
            job = jobs.get_job_status(session, job_id, token)
        except jobs.JobStatusNotFound as exc:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, str(exc), headers=STATUS_HEADERS
            ) from exc
        response.headers.update(STATUS_HEADERS)
        return JobStatus.model_validate(job)

    return router


JOB_STATUS_ROUTE = "read_job_status"
# The URL is the credential: kept out of caches and out of the Referer of any link.
STATUS_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


# Engine errors as the HTTP answers they stand for, so none surfaces as a 500.
_STATUS_BY_ERROR: dict[type[Exception], int] = {
    jobs.JobNotFound: status.HTTP_404_NOT_FOUND,
    jobs.JobStateConflict: status.HTTP_409_CONFLICT,
    jobs.InvalidCursor: status.HTTP_400_BAD_REQUEST,
}


@contextmanager
def _answering_errors() -> Iterator[None]:
    try:
        yield
    except tuple(_STATUS_BY_ERROR) as exc:
        raise HTTPException(_STATUS_BY_ERROR[type(exc)], str(exc)) from exc


STATIC_DIR = Path(__file__).resolve().parent / "_static"

# Our own script, style and API only: no inline code, no other origin, no framing.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def ledger_page_router(*, dependencies: Sequence[DependsParam] = ()) -> APIRouter:
    """The ledger page at /admin/jobs: static files whose script reads the jobs API at
    /api/v1/jobs with a bearer token the user types in. The files hold no ledger data;
    `dependencies` may still hide them (the host's own check)."""
    router = APIRouter(
        prefix="/admin", tags=["admin"], dependencies=list(dependencies), include_in_schema=False
    )

    @router.get("/jobs")
    def ledger_page() -> FileResponse:
        return _static_file("ledger.html", "text/html; charset=utf-8")

    @router.get("/static/ledger.js")
    def ledger_script() -> FileResponse:
        return _static_file("ledger.js", "text/javascript; charset=utf-8")

    @router.get("/static/ledger.css")
    def ledger_style() -> FileResponse:
        return _static_file("ledger.css", "text/css; charset=utf-8")

    return router


def _static_file(name: str, media_type: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=SECURITY_HEADERS)
