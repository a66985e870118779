"""The worker accepts JSON only: a pickled message is refused, never executed."""

import uuid

from app.core.db import transaction
from app.models.user import User
from app.tasks.example_tasks import send_welcome_email
from tests.support.broker import publish_raw
from tests.support.ledger import new_user_payload, welcomed_user_ids
from tests.support.runner import Process, wait_until


def test_a_pickled_task_message_is_refused(worker: Process) -> None:
    with transaction() as session:
        user = User(**new_user_payload())
        session.add(user)
        session.flush()
        user_id = user.id
    task_id = str(uuid.uuid4())

    publish_raw(
        [[], {"user_id": user_id}, {}],
        serializer="pickle",
        headers={"lang": "py", "task": send_welcome_email.name, "id": task_id},
    )

    wait_until(lambda: "untrusted content of type pickle" in worker.log(), 15)
    assert f"Task {send_welcome_email.name}[{task_id}] received" not in worker.log()
    assert user_id not in welcomed_user_ids()
