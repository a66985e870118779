"""`enqueue` is checked by mypy against the task function's own signature."""

from pathlib import Path

from mypy import api

CALLS = """
from sqlalchemy.orm import Session

from app.tasks.example_tasks import send_welcome_email


def enqueue_them(session: Session) -> None:
    send_welcome_email.enqueue(session, user_id=1)
    send_welcome_email.enqueue(session, usr_id=1)
    send_welcome_email.enqueue(session, user_id="1")
"""


def test_mypy_refuses_arguments_the_task_does_not_take(tmp_path: Path) -> None:
    program = tmp_path / "calls.py"
    program.write_text(CALLS)

    out, _, status = api.run(["--strict", "--no-incremental", str(program)])

    errors = [line for line in out.splitlines() if ": error:" in line]
    assert status == 1
    assert [line.split(":")[1] for line in errors] == ["9", "10"], out
    assert 'Unexpected keyword argument "usr_id"' in errors[0]
    assert 'incompatible type "str"; expected "int"' in errors[1]
