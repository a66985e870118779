"""Tasks that return results, report progress and run until cancelled, for the tests of
results, progress, status URLs and cancellation. Loaded by the test workers."""

import time

from durable_jobs import JobCancelled, report_progress, task


@task("results.count_to")
def count_to(steps: int, seconds_per_step: float = 0.0) -> dict[str, int]:
    """Counts to `steps`, reporting each step, and returns the count."""
    for done in range(1, steps + 1):
        time.sleep(seconds_per_step)
        report_progress(done, steps, f"step {done}")
    return {"counted": steps}


@task("results.return_text")
def return_text(size: int) -> str:
    """Returns a string of `size` characters (a JSON value of size + 2 bytes)."""
    return "x" * size


@task("results.return_set")
def return_set() -> set[int]:
    """Returns a value that is not JSON."""
    return {1, 2}


@task("results.report_forever")
def report_forever(seconds_per_step: float = 0.1) -> str:
    """Reports progress until it is cancelled; never finishes on its own."""
    done = 0
    while True:
        time.sleep(seconds_per_step)
        done += 1
        report_progress(done, None, "working")


@task("results.ignore_cancel")
def ignore_cancel(seconds: float) -> str:
    """Works for `seconds` without ever reporting progress, then claims success."""
    time.sleep(seconds)
    return "finished"


@task("results.swallow_cancel")
def swallow_cancel(seconds_per_step: float = 0.1) -> str:
    """Catches the cancel and returns as if it had succeeded."""
    try:
        report_forever(seconds_per_step)
    except JobCancelled:
        return "pretended to succeed"
    return "unreachable"
