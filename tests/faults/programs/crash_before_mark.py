"""The relay's path: publish a batch, then die before recording it as published.

python -m tests.faults.programs.crash_before_mark
"""

import os
import uuid

from sqlalchemy.orm import Session

import app.worker  # noqa: F401  (builds the engine)
from durable_jobs import JobState, relay_pending_jobs
from durable_jobs import _ledger as ledger
from tests.faults.programs import CRASHED


def die(
    session: Session,
    job_ids: list[uuid.UUID],
    states: tuple[JobState, ...] = (),
    *,
    held_too: bool = False,
) -> None:
    os._exit(CRASHED)


def main() -> None:
    ledger.mark_published = die
    relay_pending_jobs(min_age_seconds=0)


if __name__ == "__main__":
    main()
