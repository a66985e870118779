from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Request, Response, status

from app.api.back_pressure import ENQUEUE_REFUSED, EnqueueGuard
from app.api.deps import SessionDep, SettingsDep
from app.models.idempotency import IDEMPOTENCY_KEY_MAX_LENGTH
from app.models.user import User
from app.schemas.error import DATABASE_UNAVAILABLE, ErrorBody
from app.schemas.user import UserCreate, UserCreated, UserRead
from app.services import idempotency, users
from durable_jobs import JOB_STATUS_ROUTE, grant_status_token

router = APIRouter(prefix="/users", tags=["users"], responses=DATABASE_UNAVAILABLE)

IDEMPOTENCY_SCOPE = "POST /api/v1/users"
MAX_BIGINT = 2**63 - 1

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        description="Repeat a request safely: the same key and body get the first answer.",
    ),
]
UserId = Annotated[int, Path(ge=1, le=MAX_BIGINT)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[EnqueueGuard],
    responses={
        400: {"model": ErrorBody, "description": "The body cannot be read (not UTF-8)"},
        409: {"model": ErrorBody, "description": "The email is already registered"},
        413: {"model": ErrorBody, "description": "The body exceeds MAX_REQUEST_BODY_BYTES"},
        422: {"description": "Invalid body, or an Idempotency-Key reused with another body"},
        **ENQUEUE_REFUSED,
    },
)
def create_user(
    body: UserCreate,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> UserCreated:
    """Create a user; the welcome email is sent in the background."""
    if idempotency_key is not None:
        request_hash = idempotency.fingerprint(body.model_dump(mode="json"))
        stored = idempotency.reserve(session, IDEMPOTENCY_SCOPE, idempotency_key, request_hash)
        if stored is not None:
            response.headers["Idempotent-Replayed"] = "true"
            return UserCreated.model_validate(stored.response_body)
    user, job = users.create_user(session, body, welcome=settings.send_welcome_email)
    status_url = None
    if job is not None:
        token = grant_status_token(job)
        url = request.url_for(JOB_STATUS_ROUTE, job_id=str(job.id))
        status_url = str(url.include_query_params(token=token))
    created = UserCreated(
        **UserRead.model_validate(user).model_dump(),
        welcome_email_job_id=job.id if job is not None else None,
        welcome_email_status_url=status_url,
    )
    if idempotency_key is not None:
        idempotency.record_response(
            session,
            IDEMPOTENCY_SCOPE,
            idempotency_key,
            status.HTTP_201_CREATED,
            created.model_dump(mode="json"),
        )
    return created


@router.get("/{user_id}", responses={404: {"model": ErrorBody}})
def read_user(user_id: UserId, session: SessionDep) -> UserRead:
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No user with id {user_id}")
    return UserRead.model_validate(user)
