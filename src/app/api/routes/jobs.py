"""The engine's jobs API, behind the admin token and, for retries, the back-pressure guard."""

from app.api.back_pressure import ENQUEUE_REFUSED, EnqueueGuard
from app.api.deps import AdminDep, get_session
from app.schemas.error import DATABASE_UNAVAILABLE, ErrorBody
from durable_jobs import jobs_router

router = jobs_router(
    session=get_session,
    dependencies=[AdminDep],
    retry_dependencies=[EnqueueGuard],
    responses={
        401: {"model": ErrorBody, "description": "No bearer token"},
        403: {"model": ErrorBody, "description": "Wrong bearer token"},
        404: {"model": ErrorBody, "description": "Unknown job, or the jobs API is disabled"},
        **DATABASE_UNAVAILABLE,
    },
    retry_responses=ENQUEUE_REFUSED,
    error_model=ErrorBody,
)
