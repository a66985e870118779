from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base

EMAIL_MAX_LENGTH = 320
FULL_NAME_MAX_LENGTH = 200


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    email: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH))
    full_name: Mapped[str] = mapped_column(String(FULL_NAME_MAX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    welcome_email_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# Emails are unique whatever their case.
Index("ux_users_email_lower", func.lower(User.email), unique=True)
