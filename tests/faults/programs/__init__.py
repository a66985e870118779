"""Programs a crash test runs as a child process (`python -m tests.faults.programs.<name>`):
each dies with exit code 17 at its crash point (os._exit: no cleanup, no flush, as a
SIGKILL would leave things). They are modules, so ruff and mypy check them."""

CRASHED = 17
