"""The engine's status router: a caller polls the status URL of the job its request
started, with the token in that URL and no admin token."""

from app.api.deps import get_session
from app.schemas.error import DATABASE_UNAVAILABLE, ErrorBody
from durable_jobs import job_status_router

router = job_status_router(session=get_session, error_model=ErrorBody)
router.responses.update(DATABASE_UNAVAILABLE)
