"""Programs a crash test runs as a child process: each dies with exit code 17 at its
crash point (os._exit: no cleanup, no flush, as a SIGKILL would leave things)."""

# The API's path: commit the user and the job, then die before the publisher runs.
CRASH_AFTER_COMMIT = """
import os, sys
from app.core.db import transaction
import app.worker  # builds the engine
from app.schemas.user import UserCreate
from app.services.users import create_user
from durable_jobs._runtime import current

current().publisher.submit = lambda messages: os._exit(17)
with transaction() as session:
    create_user(session, UserCreate(email=sys.argv[1], full_name="Crash"), welcome=True)
"""

# Without the outbox: commit the user (no job row), then die before publishing inline.
INLINE_CRASH = """
import os, sys
from app.core.db import transaction
from app.schemas.user import UserCreate
from app.services.users import create_user

with transaction() as session:
    create_user(session, UserCreate(email=sys.argv[1], full_name="Inline"), welcome=False)
os._exit(17)  # where send_welcome_email.delay(user.id) would have run
"""

# The relay's path: publish a batch, then die before recording it as published.
CRASH_BEFORE_MARK = """
import os
import app.worker  # builds the engine
from durable_jobs import _ledger as ledger
from durable_jobs import relay_pending_jobs

ledger.mark_published = lambda session, job_ids: os._exit(17)
relay_pending_jobs(min_age_seconds=0)
"""
