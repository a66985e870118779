"""Idempotency keys: a retried request gets the first answer instead of a second effect."""

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.models.idempotency import IdempotencyKey


class IdempotencyKeyReused(Exception):
    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used with a different request body")


def fingerprint(payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def reserve(session: Session, scope: str, key: str, request_hash: str) -> IdempotencyKey | None:
    """Reserve the key for this request, or return the answer stored for it.

    A concurrent request with the same key waits on the unique index until the
    first one commits (then sees its answer) or rolls back (then takes the key).
    """
    inserted = session.execute(
        insert(IdempotencyKey)
        .values(scope=scope, key=key, request_hash=request_hash)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    ).first()
    if inserted is not None:
        return None
    stored = session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
    ).one()
    if stored.request_hash != request_hash:
        raise IdempotencyKeyReused()
    return stored


def record_response(
    session: Session, scope: str, key: str, status: int, body: dict[str, Any]
) -> None:
    stored = session.get(IdempotencyKey, (scope, key))
    assert stored is not None, "record_response needs a reserved key"
    stored.response_status = status
    stored.response_body = body
    session.flush()
