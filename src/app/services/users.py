"""Business rules for users. Services flush; the caller's transaction commits."""

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models.user import User
from app.schemas.user import UserCreate
from app.tasks.example_tasks import send_welcome_email
from durable_jobs import Job


class EmailAlreadyRegistered(Exception):
    def __init__(self, email: str) -> None:
        super().__init__(f"A user with email {email!r} already exists")


def create_user(session: Session, data: UserCreate, *, welcome: bool) -> tuple[User, Job | None]:
    """Create the user and, in the same transaction, the job that welcomes them (unless
    `welcome` is off: SEND_WELCOME_EMAIL)."""
    user = User(email=str(data.email), full_name=data.full_name)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        raise EmailAlreadyRegistered(str(data.email)) from exc
    if not welcome:
        return user, None
    return user, send_welcome_email.enqueue(session, user_id=user.id)
