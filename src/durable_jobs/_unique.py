"""Unique jobs: a task's `unique_key` names at most one job at a time, race-free.

Each key is a row of `job_unique_keys` naming the job that holds it. An enqueue claims
the key with one INSERT ... ON CONFLICT: PostgreSQL makes concurrent claims of one key
wait for each other, so exactly one of them writes a job; the others get that job.
A key is held while its job is unfinished, or, given a period, until the period ends.
"""

import uuid
from datetime import datetime, timedelta

from sqlalchemy import DateTime, ForeignKey, String, exists, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from durable_jobs._models import FINISHED_STATES, Job, LedgerBase

UNIQUE_KEY_MAX_LENGTH = 200


class UniqueKey(LedgerBase):
    """The job holding a task's unique key."""

    __tablename__ = "job_unique_keys"

    task_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(UNIQUE_KEY_MAX_LENGTH), primary_key=True)
    # Deferred: the key is claimed before its job's row is written, in one transaction.
    # A pruned job lets its key go with it.
    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE", deferrable=True, initially="DEFERRED"),
        index=True,
    )
    # NULL: held while the job is unfinished; else held until then, whatever the job does.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def check_unique_key(key: str) -> None:
    if not key:
        raise ValueError("unique_key must not be empty")
    if len(key) > UNIQUE_KEY_MAX_LENGTH:
        raise ValueError(
            f"unique_key is {len(key)} characters long; at most {UNIQUE_KEY_MAX_LENGTH} fit"
        )


def claim_unique_key(
    session: Session,
    task_name: str,
    key: str,
    job_id: uuid.UUID,
    period: timedelta | None,
) -> uuid.UUID:
    """Make `job_id` the holder of the key if nobody holds it; return the holder.

    A claim that finds the key held by a concurrent, uncommitted claim waits for it: the
    other's job once it commits, the key once it rolls back.
    """
    released = UniqueKey.__table__.c
    finished = exists().where(
        Job.id == released.job_id, Job.state.in_([state.value for state in FINISHED_STATES])
    )
    claim = insert(UniqueKey).values(
        task_name=task_name,
        key=key,
        job_id=job_id,
        expires_at=None if period is None else func.now() + period,
    )
    statement = claim.on_conflict_do_update(
        index_elements=[released.task_name, released.key],
        set_={"job_id": claim.excluded.job_id, "expires_at": claim.excluded.expires_at},
        # The holder's job is not visible here if it committed after this statement began:
        # then it is not finished either, and the key stays with it.
        where=(released.expires_at <= func.now()) | (released.expires_at.is_(None) & finished),
    ).returning(released.job_id)
    claimed: uuid.UUID | None = session.execute(statement).scalar()
    if claimed is not None:
        return claimed
    holder = session.scalar(
        select(UniqueKey.job_id).where(UniqueKey.task_name == task_name, UniqueKey.key == key)
    )
    assert holder is not None, "a key that conflicted is held"
    return holder
