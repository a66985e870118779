"""`uv run python -m tests.smoke`: the compose smoke test (see tests/smoke/__init__.py)."""

import signal
import sys
from types import FrameType

from tests.smoke import checks
from tests.smoke.compose import SmokeFailure, Stack, echo, say


def run_checks(stack: Stack) -> None:
    """The checks, in order, one call each: a new check is one more line here."""
    checks.start(stack)
    checks.services_healthy(stack)
    checks.exposure(stack)
    checks.metrics(stack)
    checks.flower(stack)
    checks.health_probes(stack)
    checks.happy_path(stack)
    checks.settings_reach_the_worker(stack)
    failed_job = checks.failure_path(stack)
    checks.ledger_page(stack, failed_job)
    checks.oversized_bodies(stack)
    checks.scaling(stack)
    checks.json_logs(stack)
    checks.monitoring(stack)


def main() -> int:
    signal.signal(signal.SIGTERM, _exit_on_term)
    checks.tools()
    stack = Stack()
    code = 0
    try:
        run_checks(stack)
        say("Smoke test passed")
        echo(*(f"  - {line}" for line in stack.summary))
    except SmokeFailure as failure:
        echo(f"\nsmoke: FAIL: {failure}", err=True)
        code = 1
    except KeyboardInterrupt:
        code = 130
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        if code:
            _show_the_stack(stack, code)
        if stack.keep:
            echo(
                "\nSMOKE_KEEP=1: the stack is still up "
                f"(docker compose -p {stack.project} down -v to remove it)"
            )
        else:
            say("Removing the stack and its volumes")
            stack.down()
        stack.remove_tmp()
    return code


def _show_the_stack(stack: Stack, code: int) -> None:
    echo(f"\nsmoke: failed (exit {code}); the stack as it was:", err=True)
    ps = stack.compose("ps", "-a", capture=True)
    echo(ps.stdout.rstrip(), err=True)
    echo("\n--- last log lines of every service ---", err=True)
    echo(stack.service_logs("--tail", "60").rstrip(), err=True)


def _exit_on_term(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(143)


if __name__ == "__main__":
    sys.exit(main())
