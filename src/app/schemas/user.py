import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from app.core.db import NO_NUL_PATTERN
from app.models.user import EMAIL_MAX_LENGTH, FULL_NAME_MAX_LENGTH

FullName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=FULL_NAME_MAX_LENGTH,
        pattern=NO_NUL_PATTERN,
    ),
]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    email: Annotated[EmailStr, Field(max_length=EMAIL_MAX_LENGTH)]
    full_name: FullName


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    full_name: str
    created_at: datetime
    welcome_email_sent_at: datetime | None


class UserCreated(UserRead):
    welcome_email_job_id: uuid.UUID | None = Field(
        description="Id of the job that sends the welcome email (see /api/v1/jobs/{id}); "
        "null when SEND_WELCOME_EMAIL is off."
    )
    welcome_email_status_url: str | None = Field(
        default=None,
        description="Poll this URL, with no other credential, for that job's state, "
        "progress and result; it shows nothing else. Keep it private: its token is the "
        "credential. Null when SEND_WELCOME_EMAIL is off.",
    )
