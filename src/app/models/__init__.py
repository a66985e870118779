"""Every table of the service, imported here so Alembic and the app see them all."""

from app.models.idempotency import IdempotencyKey
from app.models.user import User

__all__ = ["IdempotencyKey", "User"]
