import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

import durable_jobs as jobs
from app.api.back_pressure import ENQUEUE_REFUSED, EnqueueGuard
from app.api.deps import AdminDep, SessionDep
from app.core.db import NO_NUL_PATTERN
from app.schemas.error import DATABASE_UNAVAILABLE, ErrorBody
from app.schemas.job import JobPage, JobRead
from durable_jobs import JobState

router = APIRouter(
    prefix="/jobs",
    tags=["jobs"],
    dependencies=[AdminDep],
    responses={
        401: {"model": ErrorBody, "description": "No bearer token"},
        403: {"model": ErrorBody, "description": "Wrong bearer token"},
        404: {"model": ErrorBody, "description": "Unknown job, or the jobs API is disabled"},
        **DATABASE_UNAVAILABLE,
    },
)

STATE_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "The job is not in a state for this"}
}


@router.get("", responses={400: {"model": ErrorBody, "description": "Malformed cursor"}})
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
    found, next_cursor = jobs.list_jobs(
        session, state=state, task_name=task, limit=limit, cursor=cursor
    )
    return JobPage(items=[JobRead.model_validate(j) for j in found], next_cursor=next_cursor)


@router.get("/{job_id}")
def read_job(job_id: uuid.UUID, session: SessionDep) -> JobRead:
    return JobRead.model_validate(jobs.get_job(session, job_id))


@router.post(
    "/{job_id}/retry",
    status_code=202,
    dependencies=[EnqueueGuard],
    responses={**STATE_CONFLICT, **ENQUEUE_REFUSED},
)
def retry_job(job_id: uuid.UUID, session: SessionDep) -> JobRead:
    """Run a failed job again, as a new attempt of the same job."""
    return JobRead.model_validate(jobs.retry_job(session, job_id))


@router.post("/{job_id}/cancel", responses=STATE_CONFLICT)
def cancel_job(job_id: uuid.UUID, session: SessionDep) -> JobRead:
    """Cancel a job that has not started (queued) or waits for its next try (retrying)."""
    return JobRead.model_validate(jobs.cancel_job(session, job_id))
