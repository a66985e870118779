"""Without the outbox: commit the user (no job row), then die before publishing inline.

python -m tests.faults.programs.inline_crash EMAIL
"""

import os
import sys

from app.core.db import transaction
from app.schemas.user import UserCreate
from app.services.users import create_user
from tests.faults.programs import CRASHED


def main(email: str) -> None:
    with transaction() as session:
        create_user(session, UserCreate(email=email, full_name="Inline"), welcome=False)
    os._exit(CRASHED)  # where send_welcome_email.delay(user.id) would have run


if __name__ == "__main__":
    main(sys.argv[1])
