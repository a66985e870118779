"""The API's path: commit the user and the job, then die before the publisher runs.

python -m tests.faults.programs.crash_after_commit EMAIL
"""

import os
import sys
from typing import Any

import app.worker  # noqa: F401  (builds the engine)
from app.core.db import transaction
from app.schemas.user import UserCreate
from app.services.users import create_user
from durable_jobs._runtime import current
from tests.faults.programs import CRASHED


def die(messages: Any) -> None:
    os._exit(CRASHED)


def main(email: str) -> None:
    current().publisher.submit = die  # type: ignore[method-assign]
    with transaction() as session:
        create_user(session, UserCreate(email=email, full_name="Crash"), welcome=True)


if __name__ == "__main__":
    main(sys.argv[1])
